//! The `lakestar` command line: `check` and `scan`, run as a user would.

use std::process::Command;

fn lakestar(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("lakestar runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_example_and_names_the_line_of_a_mistake() {
    let (code, stdout, _) = lakestar(&["check", "examples/retail/pipeline.toml"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("ok, 4 dataset(s)"), "{stdout}");

    let dir = tempfile::tempdir().expect("folder");
    let path = dir.path().join("pipeline.toml");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail/pipeline.toml"))
        .expect("example contract");
    std::fs::write(&path, text.replacen("type = \"date\"", "type = \"datetime\"", 1)).expect("write");
    let (code, _, stderr) = lakestar(&["check", &path.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("pipeline.toml:") && stderr.contains("unknown type `datetime`"), "{stderr}");
}

#[test]
fn scan_reports_clear_pii_by_column_and_passes_masked_values() {
    let (code, stdout, _) = lakestar(&["scan", "examples/retail/landing/2024-01-01/customers.csv"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("column `email`: 11 value(s) look like email"), "{stdout}");
    assert!(stdout.contains("column `phone`: 12 value(s) look like phone"), "{stdout}");
    assert!(!stdout.contains("amelia"), "values are never printed: {stdout}");

    let dir = tempfile::tempdir().expect("folder");
    let masked = dir.path().join("masked.csv");
    std::fs::write(&masked, "id,email,card\nC1,6b046514a8686ddb660eab211d83c6bd@example.com,************1111\n")
        .expect("write");
    let (code, stdout, _) = lakestar(&["scan", &dir.path().to_string_lossy()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("scanned 1 file(s): 0 column finding(s)"), "{stdout}");
}

#[tokio::test]
async fn serve_keeps_an_s3_endpoint_up_that_the_sdk_can_use() {
    use std::io::BufRead;
    let home = tempfile::tempdir().expect("folder");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["serve", "--port", "0", "--home"])
        .arg(home.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lakestar serve runs");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
    let endpoint = first.split_whitespace().nth(3).expect("the URL").to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{first}");
    let client = lakestar::lake::EmbeddedS3::client_for(&endpoint);
    client
        .put_object()
        .bucket("lakestar-lake")
        .key("landing/x.csv")
        .body(b"a\n1\n".to_vec().into())
        .send()
        .await
        .expect("put");
    let listed = client.list_objects_v2().bucket("lakestar-lake").send().await.expect("list");
    assert_eq!(listed.contents().len(), 1);
    let _ = child.kill();
    let _ = child.wait();
    assert!(home.path().join("s3/lakestar-lake/landing/x.csv").is_file(), "buckets are folders under <home>/s3");
}
