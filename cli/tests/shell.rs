//! The interactive shell driven through a real pseudo-terminal (rexpect),
//! as a person at a terminal uses it: Ctrl-C during a statement and at the
//! prompt, history that survives a killed shell, meta commands, Tab
//! completion, the row limit's footer and NULL display. A piped shell
//! (cli.rs) cannot show these: rustyline reads a terminal in raw mode, and
//! Ctrl-C is only a signal when the terminal makes it one.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::workspace;
use rexpect::session::{PtySession, spawn_command};

/// How long one expected text may take to appear (an upper bound only).
const WAIT_MS: u64 = 120_000;

/// A shell on the TPC-H sample tables, in a terminal of its own, with
/// `home` as its home folder (no ~/.fairwayrc, its own history). The shell
/// is started through `sh`, which prints the process id first.
fn shell(home: &Path, extra: &[&str]) -> (PtySession, String) {
    let bin = env!("CARGO_BIN_EXE_fairway");
    let mut args = vec![
        "sql".to_string(),
        "--slots".into(),
        "2".into(),
        "--tables".into(),
        "testdata/tpch-sf0.01".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("echo pid=$$; exec {bin} {}", args.join(" ")))
        .current_dir(workspace())
        .env("HOME", home)
        .env_remove("FAIRWAY_HISTORY")
        .env("TERM", "xterm");
    let mut session = spawn_command(command, Some(WAIT_MS)).expect("start the shell in a pty");
    session.exp_string("pid=").unwrap();
    let pid = session.read_line().unwrap().trim().to_string();
    session.exp_string("fairway> ").expect("the first prompt");
    (session, pid)
}

fn quit(mut session: PtySession) {
    session.send_line("\\q").unwrap();
    session.exp_eof().expect("the shell ends after \\q");
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_the_prompt_comes_back() {
    let home = tempfile::tempdir().unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    // Runs for minutes unless cancelled.
    s.send_line(
        "select k % 7 as g, count(*) from (select value as k from \
         generate_series(1, 30000000000)) group by 1;",
    )
    .unwrap();
    // Its progress bar shows that it runs (drawn after half a second).
    s.exp_string("Stage ").expect("the statement runs");
    let sent = Instant::now();
    s.send_control('c').unwrap();
    s.exp_string("statement cancelled by Ctrl-C")
        .expect("Ctrl-C cancels the statement");
    // An upper bound only: the statement alone runs for minutes.
    assert!(
        sent.elapsed() < Duration::from_secs(60),
        "cancelled after {:?}",
        sent.elapsed()
    );
    s.exp_string("fairway> ").expect("the prompt comes back");
    s.send_line("select 'still here' as s;").unwrap();
    s.exp_string("still here").expect("the shell goes on");
    quit(s);
}

#[test]
fn ctrl_c_at_the_prompt_clears_the_line() {
    let home = tempfile::tempdir().unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    // An open string: without the clear, everything after it would be
    // part of that string and nothing would run.
    s.send("select 'never finished").unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("fairway> ").unwrap();
    s.send_line("select 40 + 2 as cleared;").unwrap();
    s.exp_string("| 42      |")
        .expect("the next line runs alone");
    quit(s);
}

#[test]
fn history_is_appended_per_statement_and_survives_a_kill() {
    let home = tempfile::tempdir().unwrap();
    let (mut s, pid) = shell(home.path(), &[]);
    s.send_line("select 6 * 7 as answer;").unwrap();
    s.exp_string("| 42     |").unwrap();
    s.send_line("\\timing off").unwrap();
    s.exp_string("timing is off").unwrap();
    // Killed: no clean exit, no chance to save at the end.
    let status = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(status.success());
    let _ = s.exp_eof();
    let history = std::fs::read_to_string(home.path().join(".fairway_history"))
        .expect("the history file exists");
    assert!(history.contains("select 6 * 7 as answer;"), "{history}");
    assert!(history.contains("\\timing off"), "{history}");
    // The next shell offers it: Up brings the last entry back.
    let (mut s, _) = shell(home.path(), &[]);
    s.send("\x1b[A\x1b[A\r").unwrap();
    s.flush().unwrap();
    s.exp_string("| 42     |")
        .expect("the statement from the killed shell's history runs again");
    quit(s);
}

#[test]
fn meta_commands_answer_at_once() {
    let home = tempfile::tempdir().unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    s.send_line("\\d").unwrap();
    s.exp_string("| customer ").expect("\\d lists the tables");
    s.exp_string("fairway> ").unwrap();
    s.send_line("\\d orders").unwrap();
    s.exp_string("| o_orderdate ")
        .expect("\\d NAME lists columns");
    s.exp_string("Date32").expect("with their types");
    s.send_line("\\dp").unwrap();
    s.exp_string("| default | FIFO (pools not used) |")
        .expect("\\dp lists the pools");
    // No ';' needed: an unknown command says so at once.
    s.send_line("\\frobnicate").unwrap();
    s.exp_string("unknown command \\frobnicate").unwrap();
    s.send_line("\\format csv").unwrap();
    s.exp_string("format is csv").unwrap();
    s.send_line("select 1 as a, 2 as b;").unwrap();
    s.exp_string("a,b").expect("\\format changes the output");
    quit(s);
}

#[test]
fn tab_completes_table_names() {
    let home = tempfile::tempdir().unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    s.send("select c_name from cust\t").unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_line(" order by c_custkey limit 1;").unwrap();
    s.exp_string("Customer#000000001")
        .expect("Tab completed cust to customer");
    quit(s);
}

#[test]
fn results_are_cut_to_maxrows_with_a_footer_and_nulls_are_shown() {
    let home = tempfile::tempdir().unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    s.send_line("select c_custkey from customer;").unwrap();
    s.exp_string("1500 rows (40 shown; \\maxrows to change)")
        .expect("the footer");
    s.send_line("\\maxrows 2").unwrap();
    s.exp_string("maxrows is 2").unwrap();
    s.send_line("select c_custkey from customer order by 1;")
        .unwrap();
    s.exp_string("1500 rows (2 shown;").unwrap();
    s.send_line("select cast(null as int) as n, 'x' as s;")
        .unwrap();
    s.exp_string("| NULL | x |").expect("NULL is spelled out");
    s.send_line("set datafusion.format.null = '(none)';")
        .unwrap();
    s.exp_string("-- SET").unwrap();
    s.send_line("select cast(null as int) as n;").unwrap();
    s.exp_string("| (none) |")
        .expect("datafusion.format.null is honoured");
    // A comment after the ';' does not keep the statement open.
    s.send_line("select 'ran' as r; -- a comment").unwrap();
    s.exp_string("| ran |").unwrap();
    // A syntax error names its statement; the statement after it runs.
    s.send_line("selec 1; select 'after' as a;").unwrap();
    s.exp_string("statement 1 (line 1)").unwrap();
    s.exp_string("| after |").unwrap();
    quit(s);
}

#[test]
fn the_init_file_runs_first() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".fairwayrc"),
        "create view answer as select 42 as v;\n",
    )
    .unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    s.send_line("select v from answer;").unwrap();
    s.exp_string("| 42 |")
        .expect("~/.fairwayrc created the view");
    quit(s);
}

#[cfg(unix)]
#[test]
fn a_history_file_that_is_a_link_is_not_followed() {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("precious.txt");
    std::fs::write(&target, "mine\n").unwrap();
    std::os::unix::fs::symlink(&target, home.path().join(".fairway_history")).unwrap();
    let (mut s, _) = shell(home.path(), &[]);
    s.send_line("select 1 as one;").unwrap();
    s.exp_string("| 1   |").unwrap();
    quit(s);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine\n");
}
