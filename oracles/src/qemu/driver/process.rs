//! The QEMU child process and its private temp dir. Every instance gets its own dir
//! (pid + counter) so parallel workers never share a socket. QEMU is spawned from one
//! long-lived thread with PR_SET_PDEATHSIG(SIGKILL) (the death signal follows the thread
//! that forked), so it dies with the harness even on SIGKILL or Ctrl-C; `Drop` kills its
//! process group and removes the dir.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// A fresh directory under the system temp dir, removed on drop.
pub struct InstanceDir {
    path: Option<PathBuf>,
}

impl InstanceDir {
    pub fn create() -> io::Result<InstanceDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("ptfuzz-qemu-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(InstanceDir { path: Some(path) }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("instance dir already removed")
    }

    /// Removes the dir now (QEMU keeps the files it has open); later calls do nothing.
    pub fn remove(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

impl Drop for InstanceDir {
    fn drop(&mut self) {
        self.remove();
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from the process-wide spawner thread, which never exits, so the child's
/// death signal fires only when the whole harness dies.
fn spawn_from_keeper(cmd: Command) -> io::Result<Child> {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("ptfuzz-qemu-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the QEMU spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    keeper
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, tx))
        .map_err(|_| io::Error::other("QEMU spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("QEMU spawner thread is gone"))?
}

/// A running QEMU: killed (whole process group) and reaped on drop.
pub struct QemuProcess {
    child: Child,
    /// QEMU's stderr, kept open after the instance dir is removed.
    stderr: File,
    exited: Option<String>,
}

impl QemuProcess {
    /// Spawns `binary args` in its own process group with stderr to `dir/stderr.log`.
    pub fn spawn(binary: &str, args: &[String], dir: &Path) -> io::Result<QemuProcess> {
        let log = dir.join("stderr.log");
        let stderr = File::create(&log)?;
        let reader = File::open(&log)?;
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let harness = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid); it allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The harness may have died between fork and prctl.
                if libc::getppid() != harness {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = spawn_from_keeper(cmd)?;
        Ok(QemuProcess {
            child,
            stderr: reader,
            exited: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once QEMU has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        if self.exited.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exited = Some(match (st.code(), st.signal()) {
                    (Some(c), _) => format!("exit code {c}"),
                    (_, Some(s)) => format!("killed by signal {s}"),
                    _ => st.to_string(),
                });
            }
        }
        self.exited.clone()
    }

    /// Waits briefly for an exit (after EOF on the socket the process may still be
    /// tearing down) and describes it with the tail of QEMU's stderr.
    pub fn describe_death(&mut self) -> String {
        for _ in 0..50 {
            if self.exit_status().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let status = self
            .exit_status()
            .unwrap_or_else(|| "still running, socket closed".into());
        let tail = self.stderr_tail(600);
        if tail.is_empty() {
            status
        } else {
            format!("{status}; stderr: {tail}")
        }
    }

    /// The last `max` bytes QEMU wrote to stderr.
    pub fn stderr_tail(&mut self, max: u64) -> String {
        let len = self.stderr.metadata().map(|m| m.len()).unwrap_or(0);
        let mut buf = Vec::new();
        if self
            .stderr
            .seek(SeekFrom::Start(len.saturating_sub(max)))
            .is_ok()
        {
            let _ = (&self.stderr).take(max).read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).trim().to_string()
    }

    /// SIGKILLs the process group and reaps QEMU.
    pub fn kill(&mut self) {
        if self.exit_status().is_none() {
            let pgid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) with a negative pid signals our child's own process group
            // (process_group(0) made QEMU its leader); no memory is touched.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
