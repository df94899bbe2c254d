//! The project's manhole model on held-out scenes generated afresh (a seed and harder
//! settings it was not trained on), through `model-eval --check`: the test fails when a
//! class falls below the numbers recorded in the manifest (the model card's) by more than
//! the recorded margin, or intact and broken covers get mixed up more than allowed.

use std::process::Command;

use crate::support::repo;

/// The held-out set of the model card: seed 7, hard settings.
const HELD_OUT: [&str; 5] = ["--seed", "7", "--hard", "--count", "300"];

#[test]
fn the_manhole_model_holds_its_record_on_held_out_scenes() {
    let python = std::env::var_os("SYNTH_PYTHON").expect(
        "SYNTH_PYTHON must name the scene generator's Python; run the tests with scripts/test.sh",
    );
    let data = tempfile::tempdir().unwrap();
    let made = Command::new(python)
        .arg(repo().join("models/manhole/synth.py"))
        .args(HELD_OUT)
        .arg("--out")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let eval = Command::new(env!("CARGO_BIN_EXE_model-eval"))
        .arg("--manifest")
        .arg(repo().join("models/manhole-v1.toml"))
        .arg("--data")
        .arg(data.path())
        .arg("--check")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&eval.stdout),
        String::from_utf8_lossy(&eval.stderr),
    );
    eprintln!("{out}");
    assert!(eval.status.success(), "{out}\n{err}");
    assert!(
        out.contains("check: every class within the record's margin"),
        "{out}"
    );
}
