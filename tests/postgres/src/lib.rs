//! Throwaway PostgreSQL clusters for Weft's tests and benches: the server
//! from Debian's packages (`scripts/lib.sh` installs it), `initdb` into a
//! temporary directory, listening on a free loopback port and on a socket
//! in that directory, with the bootstrap superuser `weft` and trust
//! authentication (loopback only). When the tests run as root, which
//! PostgreSQL refuses, the server runs as the package's `postgres` user
//! through `setpriv`. A cluster stops, and its directory goes, when it is
//! dropped; [`Cluster::stop`] and [`Cluster::start_again`] stop and
//! restart the same cluster, for tests of a database that goes away.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A PostgreSQL server of the test's own.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    fsync: bool,
    /// The watcher shell (see [`WATCH`]).
    server: Option<Child>,
    /// The watcher's standard input: closed by [`Cluster::stop`], or by the
    /// kernel when this process ends.
    guard: Option<std::process::ChildStdin>,
}

/// The watcher the server runs under (`sh -c WATCH weft-pg DIR ARGV…`): it
/// starts the server, waits for its standard input to close (a stop, or
/// the test process's end, even one that never drops its cluster, such as
/// a shared one in a `static`), then stops the server (SIGINT: fast
/// shutdown) and, unless a stop left a `keep` file, removes the directory.
/// So no test run leaves a server or a directory behind.
const WATCH: &str = r#"dir="$1"; shift
"$@" </dev/null &
pid=$!
read _ || true
kill -INT "$pid" 2>/dev/null
wait "$pid"
[ -e "$dir/keep" ] || rm -rf "$dir"
"#;

/// Where Debian puts the server's programs: the newest version there.
fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (install Debian's postgresql)"))?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql (install Debian's postgresql)".into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…`, as the `postgres` user when this is root.
fn command(program: &Path) -> Command {
    if is_root() {
        // setpriv runs the program in its own process (runuser would stay
        // between it and its signals).
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Cluster {
    /// A new cluster, started. `fsync = false` suits tests (a process
    /// killed loses nothing committed either way); benchmarks keep it on.
    pub fn start(fsync: bool) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("weft-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        if is_root() {
            // The postgres user owns the whole directory.
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?
                .success();
            if !ok {
                return Err(format!("cannot give {} to postgres", dir.path().display()));
            }
        }
        let out = command(&bin.join("initdb"))
            .args(["-U", "weft", "-A", "trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            fsync,
            server: None,
            guard: None,
        };
        cluster.start_again()?;
        Ok(cluster)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://weft@127.0.0.1:{}/{db}", self.port)
    }

    /// A new empty database with a name no other caller got: its URL.
    pub fn database(&self) -> Result<String, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.execute(&format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// Runs `sql` in the `postgres` database as the superuser (over the
    /// Unix socket, which [`Cluster::set_hba`] always leaves open).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        let said = |e: postgres::Error| match e.as_db_error() {
            Some(db) => format!("{sql}: {}", db.message()),
            None => format!("{sql}: {e}"),
        };
        let mut c = self.local().map_err(said)?;
        c.batch_execute(sql).map_err(said)
    }

    /// A superuser session over the Unix socket.
    fn local(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user("weft")
            .dbname("postgres")
            .connect(postgres::NoTls)
    }

    /// Replaces the TCP lines of `pg_hba.conf` with `lines` (the Unix
    /// socket stays trusted for the superuser's helpers) and reloads: for
    /// tests of a server that wants TLS or a password.
    pub fn set_hba(&self, lines: &str) -> Result<(), String> {
        let hba = format!("local all all trust\n{lines}\n");
        std::fs::write(self.data_dir().join("pg_hba.conf"), hba).map_err(|e| e.to_string())?;
        self.execute("SELECT pg_reload_conf()")?;
        // The postmaster rereads on its signal: wait until new sessions see it.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// Turns TLS on with this certificate chain and key (PEM files, copied
    /// into the cluster's directory, the key readable by the server's user
    /// alone), then reloads.
    pub fn enable_tls(&self, cert: &Path, key: &Path) -> Result<(), String> {
        let (c, k) = (
            self.dir.path().join("tls.crt"),
            self.dir.path().join("tls.key"),
        );
        std::fs::copy(cert, &c).map_err(|e| format!("{}: {e}", cert.display()))?;
        std::fs::copy(key, &k).map_err(|e| format!("{}: {e}", key.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        if is_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .args([&c, &k])
                .status()
                .map_err(|e| format!("chown: {e}"))?
                .success();
            if !ok {
                return Err("cannot give the TLS files to postgres".into());
            }
        }
        // ALTER SYSTEM runs alone, outside any transaction block.
        for sql in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", c.display()),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", k.display()),
            "ALTER SYSTEM SET ssl = on".into(),
            "SELECT pg_reload_conf()".into(),
        ] {
            self.execute(&sql)?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut s = self.local().map_err(|e| e.to_string())?;
            let on: String = s
                .query_one("SHOW ssl", &[])
                .map_err(|e| e.to_string())?
                .get(0);
            if on == "on" {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the server did not turn TLS on: {}",
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: sessions are cut), keeping its
    /// data; [`Cluster::start_again`] brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            // The data stays (for start_again, or for TempDir to remove).
            let _ = std::fs::write(self.dir.path().join("keep"), b"");
            // Closing the pipe makes the watcher stop the server.
            self.guard.take();
            let _ = child.wait();
        }
    }

    /// Starts the server (again): on the same port once it had one.
    pub fn start_again(&mut self) -> Result<(), String> {
        if self.server.is_some() {
            return Ok(());
        }
        let fresh = self.port == 0;
        let _ = std::fs::remove_file(self.dir.path().join("keep"));
        for _ in 0..5 {
            if fresh {
                self.port = free_port()?;
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join("server.log"))
                .map_err(|e| e.to_string())?;
            let server = command(&self.bin.join("postgres"));
            let mut argv: Vec<std::ffi::OsString> = vec![server.get_program().into()];
            argv.extend(server.get_args().map(Into::into));
            let mut child = Command::new("sh")
                .args(["-c", WATCH, "weft-pg"])
                .arg(self.dir.path())
                .args(argv)
                .arg("-D")
                .arg(self.data_dir())
                .args(["-p", &self.port.to_string(), "-k"])
                .arg(self.dir.path())
                .args(["-c", "listen_addresses=127.0.0.1"])
                .args([
                    "-c",
                    &format!("fsync={}", if self.fsync { "on" } else { "off" }),
                ])
                .args(["-c", "max_connections=200"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("postgres: {e}"))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if self.local().is_ok() {
                    self.guard = child.stdin.take();
                    self.server = Some(child);
                    return Ok(());
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !fresh {
                break;
            }
        }
        Err(format!(
            "the PostgreSQL server did not start: {}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_serves_stops_and_starts_again() {
        let mut c = Cluster::start(false).unwrap();
        let url = c.database().unwrap();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute("CREATE TABLE t (x INT); INSERT INTO t VALUES (7)")
            .unwrap();
        drop(client);
        c.stop();
        assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());
        c.start_again().unwrap();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let x: i32 = client.query_one("SELECT x FROM t", &[]).unwrap().get(0);
        assert_eq!(x, 7);
        let dir = c.data_dir();
        drop(client);
        drop(c);
        assert!(!dir.exists());
    }
}
