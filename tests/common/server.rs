//! A real `knockoff-serve` process for end-to-end tests: started on a free port with only
//! the test's settings, its JSON logs followed, killed on drop if a test failed first.

use super::http;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Generous: a debug build on a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; killed on drop if a test failed before stopping it.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    logs: Receiver<String>,
    pub seen: Vec<Value>,
}

pub fn start(model_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_knockoff-serve"));
    // Only this test's settings: nothing inherited from the developer's shell.
    for (key, _) in std::env::vars() {
        if key.starts_with("KNOCKOFF_") {
            command.env_remove(key);
        }
    }
    command
        .args(["--addr", "127.0.0.1:0", "--log-format", "json"])
        .args(args)
        .env("KNOCKOFF_MODEL", model_dir)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("knockoff-serve starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, logs) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut running = Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        logs,
        seen: Vec::new(),
    };
    let listening = running.wait_for_log("listening", START_TIMEOUT);
    running.addr = listening["fields"]["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening}"));
    running
}

impl Running {
    /// Waits for the next JSON log line whose message is `message`.
    pub fn wait_for_log(&mut self, message: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.logs.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!("no `{message}` log line ({e}); saw: {:#?}", self.seen),
            };
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                self.seen.push(Value::String(line));
                continue;
            };
            self.seen.push(value.clone());
            if value["fields"]["message"] == message {
                return value;
            }
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) with a pid this test spawned and still owns (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok((200, _)) = http(self.addr, "GET", "/v2/health/ready", &[], b"") {
                return;
            }
            assert!(Instant::now() < deadline, "server never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = http(self.addr, "POST", path, &[], body.to_string().as_bytes())
            .expect("request succeeds");
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, value)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
