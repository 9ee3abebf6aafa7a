//! A minimal QMP client (QEMU Machine Protocol, JSON over a unix socket): capabilities
//! negotiation, `stop`, `cont`, `query-status`, `quit`.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A connected, negotiated QMP session.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect to `sock` (retrying until `timeout` while QEMU creates it) and negotiate.
    pub fn connect(sock: &Path, timeout: Duration) -> Result<Qmp> {
        let t0 = Instant::now();
        let stream = loop {
            match UnixStream::connect(sock) {
                Ok(s) => break s,
                Err(e) if t0.elapsed() < timeout => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(Error::External(format!(
                        "QMP socket {} did not come up within {timeout:?}: {e}",
                        sock.display()
                    )));
                }
            }
        };
        stream.set_read_timeout(Some(timeout)).map_err(|e| Error::io(sock, e))?;
        let writer = stream.try_clone().map_err(|e| Error::io(sock, e))?;
        let mut q = Qmp { reader: BufReader::new(stream), writer };
        let greeting = q.read_value()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::External(format!("QMP: unexpected greeting {greeting}")));
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    fn read_value(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| Error::External(format!("QMP: reading a reply: {e} (QEMU hung or died?)")))?;
        if n == 0 {
            return Err(Error::External("QMP: QEMU closed the monitor socket".into()));
        }
        serde_json::from_str(&line)
            .map_err(|e| Error::External(format!("QMP: malformed reply ({e}): {line:?}")))
    }

    /// Run a command without arguments and return its `return` value (events are skipped).
    pub fn execute(&mut self, cmd: &str) -> Result<Value> {
        let req = serde_json::json!({ "execute": cmd });
        self.writer
            .write_all(format!("{req}\n").as_bytes())
            .map_err(|e| Error::External(format!("QMP: sending {cmd}: {e}")))?;
        for _ in 0..1000 {
            let v = self.read_value()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(Error::External(format!("QMP {cmd}: {e}")));
            }
            // An asynchronous event (STOP, RESUME, ...): keep reading.
        }
        Err(Error::External(format!("QMP {cmd}: no reply among 1000 events")))
    }

    /// `query-status`: the run state, e.g. `running` or `paused`.
    pub fn status(&mut self) -> Result<String> {
        let v = self.execute("query-status")?;
        v.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::External(format!("QMP query-status: unexpected reply {v}")))
    }
}
