//! A document that does not parse, told the way graphql-js tells it: one line
//! (`Syntax Error: Expected Name, found <EOF>.`) with the place in `locations`, as
//! the GraphQL spec's error shape has it. async-graphql's parser (pest) words it as
//! a drawing of the line (`" --> 1:61\n |\n1 | …\n = expected selection"`), which
//! clients show as is and users cannot read.

use async_graphql::parser::Error as ParseError;
use async_graphql::{Pos, ServerError};

use super::validation::{PARSE_FAILED, with_code};

/// The answer's error for `query`, which failed to parse with `error`.
pub(super) fn syntax_error(query: &str, error: ParseError) -> ServerError {
    let (message, at) = match &error {
        ParseError::Syntax { message, start, .. } => {
            let (found, at) = token_at(query, *start);
            (worded(message, &found), at)
        }
        ParseError::MultipleOperations { anonymous, .. } => (
            "This anonymous operation must be the only defined operation.".to_owned(),
            *anonymous,
        ),
        ParseError::OperationDuplicated {
            operation, second, ..
        } => (
            format!("There can be only one operation named \"{operation}\"."),
            *second,
        ),
        ParseError::FragmentDuplicated {
            fragment, second, ..
        } => (
            format!("There can be only one fragment named \"{fragment}\"."),
            *second,
        ),
        ParseError::MissingOperation => (
            "Syntax Error: The document has no operation.".to_owned(),
            Pos { line: 1, column: 1 },
        ),
        other => (
            format!("Syntax Error: {other}"),
            other
                .positions()
                .next()
                .unwrap_or(Pos { line: 1, column: 1 }),
        ),
    };
    let mut error = ServerError::new(message, Some(at));
    with_code(&mut error, PARSE_FAILED);
    error
}

/// pest's message (its last line is `= expected a, b, or c` or `= unexpected x`)
/// as graphql-js's sentence about the token `found`.
fn worded(message: &str, found: &str) -> String {
    let wanted = message
        .lines()
        .last()
        .map(str::trim)
        .and_then(|line| line.strip_prefix("= expected "))
        .map(|rules| {
            let words = rules.replace('_', " ").replace("name", "Name");
            // `type_` reads `type`: one space between words, none before a comma.
            words
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" ,", ",")
        });
    match wanted {
        // Where the document could have ended, graphql-js names only the token.
        Some(rules) if !rules.contains("EOI") => {
            format!("Syntax Error: Expected {rules}, found {found}.")
        }
        _ => format!("Syntax Error: Unexpected {found}."),
    }
}

/// The token at or after `at` (1-based line and column, in characters), skipping
/// what GraphQL ignores (white space, commas, comments), as graphql-js names it,
/// and where it starts.
fn token_at(query: &str, at: Pos) -> (String, Pos) {
    let mut pos = Pos { line: 1, column: 1 };
    let mut chars = query.char_indices().peekable();
    // Up to `at`.
    while let Some(&(_, c)) = chars.peek() {
        if (pos.line, pos.column) >= (at.line, at.column) {
            break;
        }
        advance(&mut pos, c);
        chars.next();
    }
    // Past what is ignored.
    let mut in_comment = false;
    while let Some(&(_, c)) = chars.peek() {
        match c {
            '\n' | '\r' => in_comment = false,
            '#' => in_comment = true,
            c if in_comment || c.is_whitespace() || c == ',' || c == '\u{feff}' => {}
            _ => break,
        }
        advance(&mut pos, c);
        chars.next();
    }
    let Some(&(start, first)) = chars.peek() else {
        return ("<EOF>".to_owned(), pos);
    };
    let rest = &query[start..];
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect();
    let found = match first {
        '.' if rest.starts_with("...") => "\"...\"".to_owned(),
        '"' => "String".to_owned(),
        c if c.is_ascii_alphabetic() || c == '_' => format!("Name \"{word}\""),
        c if c.is_ascii_digit() || c == '-' => {
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-' || *c == '.')
                .take(40)
                .collect();
            format!("Number \"{number}\"")
        }
        c => format!("\"{c}\""),
    };
    (found, pos)
}

/// `pos` moved past `c` (a `\r\n` pair counts once: the `\n` starts the line).
fn advance(pos: &mut Pos, c: char) {
    match c {
        '\n' => {
            pos.line += 1;
            pos.column = 1;
        }
        '\r' => {}
        _ => pos.column += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(query: &str) -> ServerError {
        let error = async_graphql::parser::parse_query(query).unwrap_err();
        syntax_error(query, error)
    }

    #[test]
    fn an_unfinished_document_reads_like_graphql_js() {
        let query = "{ registrationStatus(domain: \"demo-succeeds.com\") { state }";
        let error = error_of(query);
        assert_eq!(
            error.message,
            "Syntax Error: Expected selection, found <EOF>."
        );
        assert_eq!(
            error.locations,
            [Pos {
                line: 1,
                column: 60
            }]
        );
        let code = error.extensions.unwrap().get("code").cloned();
        assert_eq!(code, Some(async_graphql::Value::from(PARSE_FAILED)));
    }

    #[test]
    fn every_message_is_one_line_without_the_parsers_drawing() {
        for query in [
            "",
            "{",
            "{ a } }",
            "query ($d: ) { a }",
            "{ a(x: ) }",
            "{ a(x: 1 }",
            "{ a }\n{ b }",
            "query Q { a } query Q { b }",
            "fragment F on Q { a } fragment F on Q { a } { ...F }",
            "{ a\n  # a comment\n  ... }",
            "mutation { ",
            "{ a(s: \"unterminated) }",
            "{ é }",
        ] {
            let error = error_of(query);
            assert!(
                !error.message.contains('\n'),
                "{query:?}: {}",
                error.message
            );
            assert!(
                !error.message.contains("-->"),
                "{query:?}: {}",
                error.message
            );
            assert!(error.message.ends_with('.'), "{query:?}: {}", error.message);
            assert_eq!(error.locations.len(), 1, "{query:?}");
        }
    }

    #[test]
    fn the_token_found_is_named_where_it_is() {
        assert_eq!(
            error_of("{ a } }").message,
            "Syntax Error: Unexpected \"}\"."
        );
        assert_eq!(
            error_of("query ($d: ) { a }").message,
            "Syntax Error: Expected type, found \")\"."
        );
        let error = error_of("{\n  a(x: 1\n}");
        assert!(
            error.message.ends_with(", found \"}\"."),
            "{}",
            error.message
        );
        assert_eq!(error.locations, [Pos { line: 3, column: 1 }]);
    }
}
