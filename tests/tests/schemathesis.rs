//! Schema-driven fuzzing of the HTTP gateway: schemathesis (PyPI) reads brokerd's own
//! `/v1/openapi.json` and sends generated requests to every operation, valid and
//! invalid, a bounded number per operation, with a fixed seed. Every answer must be
//! no 5xx, carry a status, content type, headers and body that its schema documents,
//! and invalid requests must be refused (4xx). brokerd must be alive and ready
//! after it.
//!
//! `.ci/run` installs schemathesis into `target/schemathesis-venv`; elsewhere the
//! test looks there, then for `$SCHEMATHESIS`, then on `PATH`, and without one it
//! says so and passes, except under `CI`, where a missing schemathesis fails.

use std::path::PathBuf;
use std::process::Command;

use integration_tests::Brokerd;

/// Generated requests per operation and phase.
const EXAMPLES_PER_OPERATION: &str = "25";
/// The generator's seed: a failure reproduces with the same seed.
const SEED: &str = "1";
/// Longest a single request may take: above the gateway's own long-poll cap for a
/// fetch that waits for data that never comes.
const REQUEST_TIMEOUT_S: &str = "40";
/// What is checked of every answer. `positive_data_acceptance` (every request the
/// schema allows is accepted) is left out: the schema does not yet state every
/// limit the broker checks (topic-name characters, partition counts, id formats),
/// so valid-looking requests are still refused with 400.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,unsupported_method,use_after_free,ensure_resource_availability";
/// Streams never end on their own; they are tested in their own files.
const EXCLUDED_PATHS: &str = "watch|stream";

fn schemathesis() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/schemathesis-venv/bin/schemathesis");
    let candidates = [
        Some(venv),
        std::env::var_os("SCHEMATHESIS").map(PathBuf::from),
        Some(PathBuf::from("schemathesis")),
    ];
    let found = candidates.into_iter().flatten().find(|path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis is missing under CI; .ci/run installs it into target/schemathesis-venv"
        );
        eprintln!("SKIPPED: schemathesis is not installed (pip install schemathesis)");
    }
    found
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_schema() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let broker = Brokerd::start();
    let base = format!("http://{}", broker.http_addr());
    let http = reqwest::Client::new();
    // A topic to find, so that generated requests reach past "unknown topic".
    let created = http
        .post(format!("{base}/v1/topics"))
        .json(&serde_json::json!({"name": "orders", "partitions": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let reports = tempfile::tempdir().unwrap();
    let run = tokio::task::spawn_blocking({
        let base = base.clone();
        let reports = reports.path().to_path_buf();
        move || {
            Command::new(&schemathesis)
                .arg("run")
                .arg(format!("{base}/v1/openapi.json"))
                .args(["--url", &base])
                .args(["--max-examples", EXAMPLES_PER_OPERATION])
                .args(["--seed", SEED])
                .args(["--request-timeout", REQUEST_TIMEOUT_S])
                .args(["--checks", CHECKS])
                .args(["--exclude-path-regex", EXCLUDED_PATHS])
                .args(["--phases", "examples,coverage,fuzzing,stateful"])
                // One worker: hypothesis is not thread-safe in every version.
                .args(["--workers", "1"])
                .arg("--no-shrink")
                .arg("--report-dir")
                .arg(&reports)
                .current_dir(&reports)
                .env("NO_COLOR", "1")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found failures ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");

    // Still serving, and every log healthy.
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
}
