//! The man page as man renders it (man-db, installed by scripts/setup).

use std::process::Command;

use crate::util::*;

#[test]
fn man_page_renders_and_covers_every_flag() {
    let out = Command::new("man")
        .args(["-l", "man/kpipe.1"])
        .current_dir(root())
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    assert!(
        out.status.success(),
        "man -l failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace(['\u{2010}', '\u{2212}'], "-");
    for arg in kpipe::cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                text.contains(&format!("--{long}")),
                "man page lacks --{long}"
            );
        }
    }
    for section in [
        "FORMATS",
        "ENVELOPE",
        "ON-ERROR MODES",
        "TEMPLATES",
        "EXIT STATUS",
        "SIGNALS",
        "ENVIRONMENT",
        "EXAMPLES",
    ] {
        assert!(text.contains(section), "man page lacks {section}");
    }
}
