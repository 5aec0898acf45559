//! The docs that other tools read: the man page as man renders it (man-db), the systemd unit
//! as systemd-analyze checks it.

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

#[test]
fn the_systemd_unit_is_accepted_by_systemd_analyze() {
    let out = Command::new("systemd-analyze")
        .args(["verify", "contrib/systemd/kpipe.service"])
        .current_dir(root())
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_man_pages_syslog_ng_example_passes_syslog_ng_syntax_only() {
    let out = Command::new("man")
        .args(["-l", "man/kpipe.1"])
        .current_dir(root())
        .env("MANWIDTH", "250")
        .output()
        .expect("man");
    let text = String::from_utf8_lossy(&out.stdout).replace(['\u{2010}', '\u{2212}'], "-");
    let start = text
        .find("destination d_kafka {")
        .expect("the example's destination");
    let end = start
        + text[start..]
            .find("flags(flow-control); };")
            .expect("its log path")
        + 23;
    let config = format!(
        "@version: 3.38\nsource s_net {{ tcp(ip(\"127.0.0.1\") port(5514)); }};\n{}\n",
        &text[start..end]
    );
    let dir = temp_dir("man-syslog-ng");
    let file = dir.join("syslog-ng.conf");
    std::fs::write(&file, &config).unwrap();
    let out = Command::new("syslog-ng")
        .args(["--syntax-only", "-f"])
        .arg(&file)
        .output()
        .expect("syslog-ng");
    assert!(
        out.status.success(),
        "{config}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
