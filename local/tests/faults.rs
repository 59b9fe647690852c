//! Issue 32: the offline stack stopped at every stage boundary and inside every stage (SIGKILL,
//! SIGTERM, Ctrl-C), and on a full disk, then recovered with the commands the CLI prints: the
//! lake and the warehouse equal a clean run's, object by object and row by row.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{KEY, assert_equals_clean, assert_no_upload_left, clean_home, example, lakestar};

/// Starts `lakestar run` on the example pausing at `point`, and waits until it is there.
fn run_paused_at(home: &str, point: &str) -> std::process::Child {
    let example = example().to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["run", &example, "--home", home])
        .env("LAKESTAR_MASKING_KEY", KEY)
        .env("LAKESTAR_TEST_PAUSE_IN", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let marker = format!("lakestar test: paused at {point}");
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(&marker) => break,
            Some(_) => continue,
            None => panic!("the run ended before it reached {point}"),
        }
    }
    // Keep reading stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Killed (SIGKILL), terminated (SIGTERM) or interrupted (SIGINT, as Ctrl-C) as the first
/// file's stage begins and once its handler returned, then recovered as the CLI says: the next
/// command names the stopped run and its re-drive; the re-drive and a run of the rest give the
/// clean run's lake and warehouse.
#[test]
fn stopped_at_every_stage_then_recovered_as_printed_equals_a_clean_run() {
    let clean = clean_home();
    let example = example().to_string_lossy().into_owned();
    let mut points: Vec<(&str, &str)> = Vec::new();
    for state in ["Ingest", "Validate", "Mask", "Load"] {
        points.push((state, "KILL"));
    }
    for point in ["Ingest:after", "Validate:after", "Mask:after", "Load:after"] {
        points.push((point, "KILL"));
    }
    points.extend([("Validate", "TERM"), ("Load:after", "TERM"), ("Mask", "INT"), ("Ingest:after", "INT")]);
    for (point, signal) in points {
        let what = format!("{signal} at {point}");
        let home = tempfile::tempdir().expect("home");
        let home_text = home.path().to_string_lossy().into_owned();
        let child = run_paused_at(&home_text, point);
        let status =
            Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "{what}");
        let output = child.wait_with_output().expect("stopped");
        assert!(!output.status.success(), "{what}: the stopped run does not report success");

        // What the CLI says next, and its command as printed.
        let (code, listed, stderr) = lakestar(&["executions", "--home", &home_text], &[]);
        assert_eq!(code, 0, "{what}: {stderr}");
        let printed = format!("lakestar redrive --all-failed --home {home_text}");
        let said = format!("{listed}{stderr}");
        assert!(said.contains(&printed) || said.contains("lakestar redrive"), "{what}: names the re-drive: {said}");
        let (code, stdout, stderr) = lakestar(&["redrive", "--all-failed", "--home", &home_text], &[]);
        assert_eq!(code, 0, "{what}: {stdout}{stderr}");
        assert!(stdout.contains("SUCCEEDED"), "{what}: {stdout}");
        let (code, stdout, stderr) = lakestar(&["run", &example, "--home", &home_text], &[]);
        assert_eq!(code, 0, "{what}: {stdout}{stderr}");
        assert_equals_clean(home.path(), clean.path(), &what);
        assert_no_upload_left(home.path());
    }
}

/// A tmpfs of `megabytes` mounted on a new folder, unmounted when dropped.
struct SmallDisk {
    folder: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let folder = tempfile::tempdir().expect("a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(folder.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (the CI runs as root)");
        SmallDisk { folder }
    }

    fn grow(&self, megabytes: u32) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(self.folder.path())
            .status()
            .expect("mount runs");
        assert!(status.success());
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.folder.path()).status();
    }
}

/// A copy of the example with a larger sales delivery (about 2.6 MB of CSV) on a fourth day.
fn example_with_large_sales() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("example");
    let copy = Command::new("cp").arg("-r").arg(example().join("landing")).arg(dir.path()).status().expect("cp");
    assert!(copy.success());
    std::fs::copy(example().join("pipeline.toml"), dir.path().join("pipeline.toml")).expect("contract");
    let header = std::fs::read_to_string(example().join("landing/2024-01-01/sales.csv")).expect("sales");
    let mut text = header.lines().next().expect("a header").to_string();
    text.push('\n');
    for order in 0..30_000 {
        let quantity = order % 9 + 1;
        text.push_str(&format!(
            "O{:07},1,2024-01-04,2024-01-05,C1001,P001,S01,{quantity},1.85,4111 1111 1111 1111,store\n",
            order + 1_000_000
        ));
    }
    std::fs::create_dir_all(dir.path().join("landing/2024-01-04")).expect("a day");
    std::fs::write(dir.path().join("landing/2024-01-04/sales.csv"), text).expect("large sales");
    dir
}

/// Issue 32.1 and 32.4 on a full disk: the home and the temporary folder on a small tmpfs.
/// Each size fills the disk at another point (the landing copy, a stage's objects, the
/// warehouse); the failure is `DiskFull` naming the place, nothing is lost, and once there is
/// room the printed re-drive finishes the run: the lake and warehouse equal a clean run's.
#[test]
fn a_full_disk_is_named_and_once_freed_the_printed_re_drive_equals_a_clean_run() {
    let example = example_with_large_sales();
    let example_text = example.path().to_string_lossy().into_owned();
    let clean = tempfile::tempdir().expect("home");
    let (code, stdout, stderr) = lakestar(&["run", &example_text, "--home", &clean.path().to_string_lossy()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut failures = Vec::new();
    for megabytes in [4, 7, 10] {
        let disk = SmallDisk::mount(megabytes);
        let home = disk.path().join("home");
        let temp = disk.path().join("tmp");
        std::fs::create_dir_all(&temp).expect("tmp");
        let home_text = home.to_string_lossy().into_owned();
        let temp_text = temp.to_string_lossy().into_owned();
        let env = [("TMPDIR", temp_text.as_str())];
        let (code, stdout, stderr) = lakestar(&["run", &example_text, "--home", &home_text], &env);
        let said = format!("{stdout}{stderr}");
        if code == 0 {
            continue;
        }
        assert!(said.contains("DiskFull") || said.contains("disk is full"), "{megabytes} MB: {said}");
        assert!(!said.contains("InternalError") && !said.contains("S3Unavailable"), "{megabytes} MB: {said}");
        failures.push(megabytes);

        disk.grow(256);
        let (code, stdout, stderr) = lakestar(&["redrive", "--all-failed", "--home", &home_text], &env);
        assert_eq!(code, 0, "{megabytes} MB: {stdout}{stderr}");
        let (code, stdout, stderr) = lakestar(&["run", &example_text, "--home", &home_text], &env);
        assert_eq!(code, 0, "{megabytes} MB: {stdout}{stderr}");
        assert_equals_clean(&home, clean.path(), &format!("{megabytes} MB"));
        assert_no_upload_left(&home);
    }
    assert!(failures.len() >= 2, "the disk filled at several points: {failures:?}");
}
