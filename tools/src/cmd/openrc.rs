//! `forge openrc convert`: systemd units to an OpenRC tree (init scripts, conf.d,
//! crontab, runlevel links) plus a report of what did not map exactly.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use forge_engine::openrc::{self, report, Conversion};

#[derive(Subcommand)]
#[command(defer = true)]
pub enum OpenrcCmd {
    /// Convert systemd units (.service, .timer, .path) into OpenRC files
    #[command(long_about = CONVERT_HELP)]
    Convert(ConvertArgs),
}

const CONVERT_HELP: &str = "\
Convert systemd units (.service, .timer, .path) into OpenRC files.

Writes, under --out DIR (which must be absent or empty):
  init.d/<service>            the openrc-run script (mode 755)
  conf.d/<service>            exported Environment= of the unit, when it has one
  crontabs/root               busybox crond lines for the .timer units
  runlevels/<level>/<service> a symlink to /etc/init.d/<service>, as rc-update
                              makes it, for units with WantedBy= (nothing is run)
  REPORT.txt                  every directive not mapped exactly, one a line:
                              unit:line: [unmapped|approximated] Key=value: why

A .path unit becomes the service <stem>-path, an inotifyd watcher that restarts
the service it names. Units of other kinds are listed in the report only.
Unmapped directives do not fail the command (exit 0); a unit that cannot be
read fails it (exit 3) with the file and line. docs/openrc.md has the mapping.";

#[derive(Args)]
pub struct ConvertArgs {
    /// Unit files; each is named by its file name (magic.service)
    #[arg(required = true, value_name = "UNIT")]
    units: Vec<PathBuf>,
    /// Directory to write the OpenRC tree into (absent or empty)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Also print the report on stdout
    #[arg(long)]
    print_report: bool,
}

impl OpenrcCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            OpenrcCmd::Convert(a) => a.run(),
        }
    }
}

impl ConvertArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        check_out_dir(&self.out)?;
        let mut conversions = BTreeMap::new();
        for path in &self.units {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a unit file name", path.display()))?;
            let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let conv = openrc::convert_unit(name, &text, &openrc::Override::default())
                .with_context(|| format!("cannot convert {}", path.display()))?;
            if conversions.insert(name.to_string(), conv).is_some() {
                bail!("{name} is given twice; each unit name must be unique");
            }
        }
        let all: Vec<&Conversion> = conversions.values().collect();
        check_unique_services(&all)?;
        write_tree(&self.out, &all)?;
        let entries: Vec<_> = all.iter().flat_map(|c| c.report.iter().cloned()).collect();
        let text = report::render(&entries);
        write(&self.out.join("REPORT.txt"), &text, 0o644)?;
        if self.print_report {
            print!("{text}");
        }
        let services = all.iter().filter(|c| c.script.is_some()).count();
        let cron = all.iter().filter(|c| !c.cron.is_empty()).count();
        eprintln!(
            "converted {} units: {services} init scripts, {cron} timers to cron; {} report entries in {}",
            all.len(),
            entries.len(),
            self.out.join("REPORT.txt").display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty; give an absent or empty directory so nothing is overwritten", out.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", out.display())),
    }
}

fn check_unique_services(all: &[&Conversion]) -> anyhow::Result<()> {
    let mut seen = BTreeMap::new();
    for c in all.iter().filter(|c| c.script.is_some()) {
        if let Some(svc) = &c.service {
            if let Some(other) = seen.insert(svc.clone(), c.unit.clone()) {
                bail!("{other} and {} both become the OpenRC service `{svc}`; convert them separately", c.unit);
            }
        }
    }
    Ok(())
}

fn write_tree(out: &Path, all: &[&Conversion]) -> anyhow::Result<()> {
    let mut crontab = String::new();
    for c in all {
        for line in &c.cron {
            crontab.push_str(line);
            crontab.push('\n');
        }
        let (Some(svc), Some(script)) = (&c.service, &c.script) else { continue };
        write(&out.join("init.d").join(svc), script, 0o755)?;
        if let Some(conf) = &c.conf {
            write(&out.join("conf.d").join(svc), conf, 0o644)?;
        }
        if let Some(level) = &c.runlevel {
            let link = out.join("runlevels").join(level).join(svc);
            mkdir(link.parent())?;
            std::os::unix::fs::symlink(format!("/etc/init.d/{svc}"), &link)
                .with_context(|| format!("cannot link {}", link.display()))?;
        }
    }
    if !crontab.is_empty() {
        write(&out.join("crontabs/root"), &crontab, 0o600)?;
    }
    Ok(())
}

fn mkdir(dir: Option<&Path>) -> anyhow::Result<()> {
    if let Some(d) = dir {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    mkdir(path.parent())?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}
