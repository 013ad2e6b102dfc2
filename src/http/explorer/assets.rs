//! The explorer's built files (`web/explorer/dist/`, committed), embedded in the
//! binary so the gateway serves GraphiQL with no network and `cargo build` needs
//! no Node. Each file has a content hash in its name, so it is cached for a year;
//! each has `.br` and `.gz` copies compressed at build time, chosen by the
//! request's `Accept-Encoding`.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// `web/explorer/dist/`, as built by `web/explorer/build.mjs`.
#[derive(rust_embed::Embed)]
#[folder = "web/explorer/dist/"]
pub(super) struct Dist;

/// `dist/manifest.json`: what the build produced and from which sources.
#[derive(Debug, Deserialize)]
pub(super) struct Manifest {
    /// The page's ES module.
    pub script: String,
    /// The page's stylesheet.
    pub style: String,
    /// Our icon.
    pub favicon: String,
}

impl Manifest {
    /// The manifest built into the binary.
    pub(super) fn embedded() -> Self {
        let file = Dist::get("manifest.json").expect("web/explorer/dist/manifest.json is embedded");
        serde_json::from_slice(&file.data).expect("the embedded manifest is valid (tests check it)")
    }
}

/// Hashed names never change content: browsers and proxies may keep them a year.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// `GET assets/{file}`: an embedded file in the best encoding the client accepts.
pub(super) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    // Compressed copies are reached only through negotiation, the manifest never.
    let servable = !file.ends_with(".br") && !file.ends_with(".gz") && file != "manifest.json";
    let Some(content_type) = servable.then(|| content_type(&file)).flatten() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepted = Accepted::parse(&headers);
    let chosen = [
        (Encoding::Brotli, accepted.brotli),
        (Encoding::Gzip, accepted.gzip),
    ]
    .into_iter()
    .filter(|(_, accepted)| *accepted)
    .find_map(|(encoding, _)| {
        Dist::get(&format!("{file}.{}", encoding.suffix())).map(|f| (Some(encoding), f.data))
    });
    let (encoding, data): (Option<Encoding>, Cow<'static, [u8]>) = match chosen {
        Some(found) => found,
        None => match Dist::get(&file) {
            Some(found) => (None, found.data),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let mut response = Response::new(Body::from(data));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(encoding) = encoding {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
    }
    response
}

/// The media type of the kinds of file the build emits; other names are not served.
fn content_type(file: &str) -> Option<&'static str> {
    let (_, extension) = file.rsplit_once('.')?;
    Some(match extension {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "ttf" => "font/ttf",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gz",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }
}

/// Which precompressed encodings `Accept-Encoding` allows (RFC 9110 §12.5.3: a
/// coding is acceptable when listed, or covered by `*`, with a q-value above 0).
#[derive(Debug, Default, PartialEq, Eq)]
struct Accepted {
    brotli: bool,
    gzip: bool,
}

impl Accepted {
    fn parse(headers: &HeaderMap) -> Self {
        let (mut brotli, mut gzip, mut any) = (None, None, None);
        let values = headers.get_all(header::ACCEPT_ENCODING).iter();
        for item in values
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
        {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let allowed = parts.all(|param| {
                let param = param.trim();
                let Some(q) = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="))
                else {
                    return true;
                };
                q.trim().parse::<f32>().is_ok_and(|q| q > 0.0)
            });
            match coding.as_str() {
                "br" => brotli = Some(allowed),
                "gzip" | "x-gzip" => gzip = Some(allowed),
                "*" => any = Some(allowed),
                _ => {}
            }
        }
        Self {
            brotli: brotli.or(any).unwrap_or(false),
            gzip: gzip.or(any).unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(value: &str) -> Accepted {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        Accepted::parse(&headers)
    }

    #[test]
    fn accept_encoding_honours_q_values_and_the_wildcard() {
        let both = Accepted {
            brotli: true,
            gzip: true,
        };
        let gzip_only = Accepted {
            brotli: false,
            gzip: true,
        };
        assert_eq!(accepted("gzip, deflate, br, zstd"), both);
        assert_eq!(accepted("gzip"), gzip_only);
        assert_eq!(accepted("br;q=0, gzip;q=0.5"), gzip_only);
        assert_eq!(accepted("BR ; Q=0 , *"), gzip_only);
        assert_eq!(accepted("identity"), Accepted::default());
        assert_eq!(accepted("*;q=0"), Accepted::default());
        assert_eq!(accepted("br;q=nonsense"), Accepted::default());
        assert_eq!(Accepted::parse(&HeaderMap::new()), Accepted::default());
    }

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let manifest = Manifest::embedded();
        for file in [&manifest.script, &manifest.style, &manifest.favicon] {
            assert!(Dist::get(file).is_some(), "{file} is embedded");
            assert!(content_type(file).is_some(), "{file} has a media type");
        }
    }
}
