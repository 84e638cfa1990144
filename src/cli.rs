//! `sluice transfer`: the same engine as the service, for one transfer from the command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::domain::convert::{reading, Described};
use crate::engine::batch::{Progress, TargetTable};
use crate::engine::file::{FileBytes, FileRead};
use crate::engine::infer::default_null_words;
use crate::engine::partition::Partitioning;
use crate::engine::pipeline::{run_transfer, TransferRequest};
use crate::engine::{ConnectSpec, DbKind, SinkSpec, SourceSpec, SslMode, Timeouts};
use crate::settings::Settings;

/// A connection from a URL: `postgres://user:pass@host:5432/db?sslmode=require`,
/// `mysql://…` or `mariadb://…`, `sqlite://path/to/file.db` (`sqlite:///abs/path.db`).
pub fn parse_url(text: &str, timeouts: Timeouts) -> anyhow::Result<ConnectSpec> {
    let base = ConnectSpec {
        kind: DbKind::named("sqlite"),
        ssl_mode: SslMode::Prefer,
        timeouts,
        ..ConnectSpec::file()
    };
    if let Some(path) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            bail!("{text:?}: a sqlite URL needs a file path, e.g. sqlite://data/app.db");
        }
        return Ok(ConnectSpec {
            path: Some(PathBuf::from(path)),
            ..base
        });
    }
    let url = url::Url::parse(text).with_context(|| format!("{text:?} is not a URL"))?;
    let kind = DbKind::parse(url.scheme())
        .filter(|k| k.is_server())
        .ok_or_else(|| {
            let schemes: Vec<String> = DbKind::names().iter().map(|n| format!("{n}://")).collect();
            anyhow!(
                "unknown scheme {:?}: use {}",
                url.scheme(),
                schemes.join(", ")
            )
        })?;
    let (default_port, default_user) = kind.connector().defaults();
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let mut ssl_mode = SslMode::Prefer;
    let mut ssl_root_cert = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" | "ssl-mode" | "sslMode" => {
                ssl_mode = SslMode::parse(&value)
                    .ok_or_else(|| anyhow!("sslmode {value:?} is not one of {}", SslMode::WORDS))?
            }
            "sslrootcert" => ssl_root_cert = Some(PathBuf::from(value.as_ref())),
            other => bail!("unknown URL option {other:?}"),
        }
    }
    let database = url.path().trim_start_matches('/').to_string();
    if database.is_empty() {
        bail!("{text:?} names no database (…/DATABASE)");
    }
    Ok(ConnectSpec {
        kind,
        host: url
            .host_str()
            .ok_or_else(|| anyhow!("{text:?} names no host"))?
            .to_string(),
        port: url.port().unwrap_or(default_port),
        database: decode(&database),
        username: if url.username().is_empty() {
            default_user.to_string()
        } else {
            decode(url.username())
        },
        password: url.password().map(|p| SecretString::from(decode(p))),
        ssl_mode,
        ssl_root_cert,
        ..base
    })
}

pub struct TransferArgs {
    pub source: String,
    pub target: String,
    /// The SQL to run on the source; none for a file.
    pub query: Option<String>,
    pub table: String,
    pub schema: Option<String>,
    pub overwrite: bool,
    /// Read the source in `partitions` ranges of this integer column, in parallel.
    pub partition_column: Option<String>,
    pub partitions: Option<u32>,
}

/// A file on this machine as a transfer's source: its format from its name (or Parquet's magic
/// bytes), its schema detected as for an upload (from the first MiB; a Parquet file's footer).
async fn local_file(path: &Path) -> anyhow::Result<(ConnectSpec, SourceSpec)> {
    use std::io::Read;

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
    let (_, format) = crate::domain::files::kind_of(&name);
    let owned = path.to_path_buf();
    let detected = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut file = std::fs::File::open(&owned)
            .with_context(|| format!("cannot open {}", owned.display()))?;
        let size = file.metadata()?.len();
        let mut sample = Vec::new();
        (&mut file)
            .take(crate::engine::detect::SAMPLE_BYTES)
            .read_to_end(&mut sample)?;
        let detected = if format == Some("parquet") || sample.starts_with(b"PAR1") {
            crate::domain::files::parquet_schema(std::fs::File::open(&owned)?)
        } else {
            let whole = sample.len() as u64 == size;
            crate::engine::detect::detect_schema(&sample, whole, format, &default_null_words())
        };
        detected.map_err(|why| anyhow!("{}: {why}", owned.display()))
    })
    .await??;
    let schema = serde_json::to_value(&detected)?;
    let described = Described {
        format: Some(detected.format.as_str()),
        schema: Some(&schema),
    };
    let (input, fields) = reading(described, None, None, None, || "no schema".into())
        .map_err(|e| anyhow!("{}: {}", path.display(), e.detail))?;
    let read = FileRead {
        bytes: FileBytes::Local(path.to_path_buf()),
        input,
        fields,
    };
    Ok((ConnectSpec::file(), SourceSpec::File(read)))
}

/// Run one transfer, showing progress; Ctrl-C cancels it (the target is left as it was).
pub async fn transfer(args: TransferArgs, settings: &Settings) -> anyhow::Result<u64> {
    let timeout = settings.engine.timeouts();
    let max = crate::engine::partition::MAX_PARTITIONS;
    let partitioning = match (args.partition_column, args.partitions) {
        (None, None) => None,
        (Some(column), Some(partitions)) if (1..=max).contains(&partitions) => {
            Some(Partitioning { column, partitions })
        }
        (Some(_), Some(_)) => bail!("--partitions must be from 1 to {max}"),
        (None, Some(_)) => bail!("--partitions needs --partition-column"),
        (Some(_), None) => bail!("--partition-column needs --partitions"),
    };
    let (source, read) = match args.source.strip_prefix("file://") {
        Some(path) => {
            if args.query.is_some() || partitioning.is_some() {
                bail!("a file:// source is read whole: no --query and no partitions");
            }
            local_file(Path::new(path)).await.context("--source")?
        }
        None => {
            let query = args
                .query
                .ok_or_else(|| anyhow!("--query is required (the SQL to run on the source)"))?;
            let source = parse_url(&args.source, timeout).context("--source")?;
            (source, SourceSpec::Query(query))
        }
    };
    let request = TransferRequest {
        source,
        read,
        target: parse_url(&args.target, timeout).context("--target")?,
        write: SinkSpec::Table(TargetTable {
            schema: args.schema,
            table: args.table,
            overwrite: args.overwrite,
        }),
        batch_rows: settings.jobs.batch_rows,
        partitioning,
    };
    let progress = Arc::new(Progress::default());
    let cancel = CancellationToken::new();
    let mut job = crate::jobs::engine_runtime().spawn(run_transfer(
        request,
        progress.clone(),
        cancel.clone(),
    ));
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .expect("a valid template"),
        );
        bar
    });
    let describe = |rows: u64| {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{rows} rows written, {:.0} rows/s, {:.1} MB read",
            rows as f64 / secs,
            progress.bytes_read() as f64 / 1e6
        )
    };
    let mut tick = tokio::time::interval(if terminal {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    });
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result = loop {
        tokio::select! {
            joined = &mut job => break joined.map_err(|e| anyhow!("the transfer task failed: {e}"))?,
            _ = &mut ctrl_c, if !cancel.is_cancelled() => {
                eprintln!("Cancelling…");
                cancel.cancel();
            }
            _ = tick.tick() => {
                let line = describe(progress.rows_written());
                match &bar {
                    Some(bar) => { bar.set_message(line); bar.tick(); }
                    None => eprintln!("{line}"),
                }
            }
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(rows) => {
            eprintln!("Done: {} in {:.1?}.", describe(rows), started.elapsed());
            Ok(rows)
        }
        Err(e) => Err(anyhow!("transfer failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_each_kind_parse() {
        let t = Timeouts::default();
        let pg = parse_url("postgres://u:p%40ss@db:6543/shop?sslmode=require", t).unwrap();
        assert_eq!(
            (pg.kind, pg.host.as_str(), pg.port, pg.database.as_str()),
            (DbKind::named("postgresql"), "db", 6543, "shop")
        );
        assert_eq!(pg.username, "u");
        assert_eq!(pg.ssl_mode, SslMode::Require);
        use secrecy::ExposeSecret;
        assert_eq!(pg.password.unwrap().expose_secret(), "p@ss");
        let my = parse_url("mysql://root@127.0.0.1/test", t).unwrap();
        assert_eq!((my.kind, my.port), (DbKind::named("mysql"), 3306));
        let lite = parse_url("sqlite://data/app.db", t).unwrap();
        assert_eq!(lite.path.unwrap(), PathBuf::from("data/app.db"));
        assert!(parse_url("oracle://x/y", t).is_err());
        assert!(parse_url("postgres://h", t).is_err());
    }
}
