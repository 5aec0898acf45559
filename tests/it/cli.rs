//! The command line: usage errors, the man page and completions generated from it.

use std::process::Command;

use crate::util::*;

#[test]
fn checked_in_man_page_and_completions_match_the_cli() {
    let bless = std::env::var_os("KPIPE_BLESS").is_some();
    for (path, content) in kpipe::assets::all() {
        let file = root().join(path);
        if bless {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &content).unwrap();
            continue;
        }
        let checked_in = std::fs::read(&file).unwrap_or_default();
        assert!(
            checked_in == content,
            "{path} is out of date with the CLI: run scripts/gen-assets and commit the result"
        );
    }
}

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
fn bash_completion_loads() {
    let out = Command::new("bash")
        .args(["-c", "source completions/kpipe.bash && complete -p kpipe"])
        .current_dir(root())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kpipe"));
}

#[test]
fn cli_definition_is_consistent() {
    kpipe::cli::command().debug_assert();
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let run = kpipe(&["--format", "yaml"], b"");
    assert_eq!(run.code(), 2, "{}", run.stderr);
    let run = kpipe(&["-f", "lines"], b"x\n");
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr.contains("kpipe: no topic: give -t TOPIC"),
        "{}",
        run.stderr
    );
    let run = kpipe(&["-t", "x", "-k", "${HOST}"], b"x\n");
    assert_eq!(run.code(), 2);
    assert!(run.stderr.contains("use -f ndjson"), "{}", run.stderr);
}

#[test]
fn a_typo_in_a_property_is_a_configuration_error() {
    let run = kpipe(&["-t", "x", "-X", "compresion.type=lz4"], b"x\n");
    assert_eq!(run.code(), 78, "{}", run.stderr);
    assert!(
        run.stderr.contains("compresion.type") && run.stderr.contains("-X"),
        "{}",
        run.stderr
    );
    let run = kpipe(&["-t", "x", "-X", "acks=1"], b"x\n");
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("use --acks instead"), "{}", run.stderr);
}

#[test]
fn quiet_prints_nothing_on_success_and_one_line_on_failure() {
    let b = shared_brokers();
    let topic = fresh_topic("quiet");
    let ok = kpipe(&["-b", b, "-t", &topic, "-q"], b"a\nb\n");
    assert_eq!(ok.code(), 0, "{}", ok.stderr);
    assert_eq!(ok.stderr, "");
    let bad = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-t",
            &topic,
            "-q",
            "--delivery-timeout",
            "2s",
        ],
        b"a\n",
    );
    assert!(matches!(bad.code(), 69 | 75));
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn ndjson_on_plain_text_says_what_to_do() {
    let run = kpipe(&["--dry-run", "-t", "x", "-f", "ndjson"], b"plain text\n");
    assert_eq!(run.code(), 0);
    assert!(
        run.stderr.contains("line 1, byte 0: invalid JSON"),
        "{}",
        run.stderr
    );
}

#[test]
fn progress_only_on_a_terminal() {
    let dir = temp_dir("progress");
    let input = dir.join("input.txt");
    let lines: String = (0..300_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let cmd = format!(
        "{} --dry-run -t x < {} > /dev/null",
        kpipe_bin(),
        input.display()
    );
    // `script` gives kpipe a terminal as stderr, as a person at a shell would have.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("ETA") && tty.contains("delivered"),
        "no progress on a terminal: {tty}"
    );
    let plain = Command::new("sh").args(["-c", &cmd]).output().expect("sh");
    let text = String::from_utf8_lossy(&plain.stderr);
    assert!(!text.contains("ETA"), "progress on a pipe: {text}");
}
