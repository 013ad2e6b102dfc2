//! The Prometheus exposition a gateway serves, parsed into samples, so a test
//! reads a counter by name and labels rather than by scanning lines.

use std::collections::BTreeMap;

use super::TestApp;

/// One parsed exposition: (name, labels, value) per sample.
pub(crate) struct Exposition {
    /// The text as served.
    pub(crate) text: String,
    /// Every sample: (name, labels, value).
    pub(crate) samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    /// Parses the text format's sample lines (label values here never hold `,` or `}`).
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("key=\"value\"");
                        (key.to_owned(), value.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().expect("a number"))
            })
            .collect();
        Self { text, samples }
    }

    /// The sum of `name`'s samples whose labels include `labels`.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(sample, sample_labels, _)| {
                sample == name
                    && labels.iter().all(|(key, value)| {
                        sample_labels.get(*key).map(String::as_str) == Some(value)
                    })
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    pub(crate) fn lookups(&self, result: &str) -> f64 {
        self.value(
            "registrar_gateway_cache_lookups_total",
            &[("result", result)],
        )
    }

    pub(crate) fn upstream(&self, outcome: &str) -> f64 {
        self.value(
            "registrar_gateway_upstream_requests_total",
            &[("outcome", outcome)],
        )
    }
}

/// `/metrics` of `app`, checked to be the Prometheus text format, parsed.
pub(crate) async fn scrape(app: &TestApp) -> Exposition {
    scrape_url(app, &app.url("/metrics")).await
}

/// The Prometheus exposition at `url`, checked to be the text format, parsed.
pub(crate) async fn scrape_url(app: &TestApp, url: &str) -> Exposition {
    let response = app.http.get(url).send().await.expect("an answer");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Exposition::parse(response.text().await.unwrap())
}
