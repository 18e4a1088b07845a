//! The admin API's OpenAPI document is a reviewed snapshot: a change to an endpoint, a
//! schema, a status or an error code shows in review as a diff of the document.

#![allow(clippy::unwrap_used)] // tests fail by panicking

#[test]
fn the_openapi_document_is_the_reviewed_one() {
    let document = services::admin_api::openapi().to_pretty_json().unwrap();
    insta::with_settings!({
        snapshot_path => "../../snapshots/services",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("openapi.json", document);
    });
}
