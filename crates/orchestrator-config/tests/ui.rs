//! Pipeline files in `ui/invalid/` must fail with exactly the errors in the
//! sibling `.err` file; those in `ui/valid/` must parse. Run with
//! `UPDATE_SNAPSHOTS=1` to rewrite the `.err` files after a wording change.

use std::path::Path;

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui").join(dir);
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn invalid_files_report_exactly_their_errors() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    let inputs = files("invalid");
    assert!(inputs.len() >= 15, "the corpus shrank");
    for input in inputs {
        let name = Path::new("ui").join(input.file_name().unwrap());
        let text = std::fs::read_to_string(&input).unwrap();
        let got = match orchestrator_config::parse(&text, &name) {
            Ok(_) => "parsed without errors\n".to_string(),
            Err(e) => e.to_string(),
        };
        let snapshot = input.with_extension("err");
        if update {
            std::fs::write(&snapshot, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if got != want {
            failures.push(format!("{}:\n--- want\n{want}--- got\n{got}", input.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_files_parse() {
    for input in files("valid") {
        let text = std::fs::read_to_string(&input).unwrap();
        if let Err(e) = orchestrator_config::parse(&text, &input) {
            panic!("{}: {e}", input.display());
        }
    }
}
