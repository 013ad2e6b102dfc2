//! The committed SDL files describe the code: the schema and the federation subgraph's.

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
