//! The committed documents that describe the code: the SDL and the README's settings.

use registrar_gateway::graphql::{SchemaShape, sdl};

#[test]
fn the_committed_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl(SchemaShape::Standalone),
        "schema/schema.graphql is out of date: run `cargo run -- schema > schema/schema.graphql`"
    );
}

#[test]
fn the_committed_subgraph_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/subgraph.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl(SchemaShape::Subgraph),
        "schema/subgraph.graphql is out of date: run `cargo run -- schema --federation > schema/subgraph.graphql`"
    );
}

#[test]
fn the_readme_documents_every_gateway_setting() {
    use clap::CommandFactory;
    let readme = include_str!("../../README.md");
    let command = registrar_gateway::cli::Cli::command();
    for arg in command.get_arguments() {
        let Some(long) = arg
            .get_long()
            .filter(|long| !["help", "version"].contains(long))
        else {
            continue;
        };
        assert!(
            readme.contains(&format!("`--{long}`")),
            "README.md does not document --{long}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_str().unwrap();
            assert!(
                readme.contains(&format!("`{env}`")),
                "README.md does not document {env}"
            );
        }
    }
}
