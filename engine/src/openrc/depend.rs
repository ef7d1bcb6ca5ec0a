//! systemd unit names to OpenRC service names and runlevels: the mapping tables
//! (documented in docs/openrc.md; keep both in step).

/// Units with a fixed OpenRC counterpart: (systemd unit, OpenRC service).
pub const SERVICE_MAP: &[(&str, &str)] = &[
    ("ModemManager.service", "modemmanager"),
    ("NetworkManager.service", "networkmanager"),
    ("avahi-daemon.service", "avahi-daemon"),
    ("chrony.service", "chronyd"),
    ("cron.service", "crond"),
    ("dbus.service", "dbus"),
    ("dbus.socket", "dbus"),
    ("local-fs.target", "localmount"),
    ("network-online.target", "net"),
    ("network.target", "net"),
    ("nss-lookup.target", "dns"),
    ("polkit.service", "polkit"),
    ("remote-fs.target", "netmount"),
    ("rsyslog.service", "rsyslog"),
    ("ssh.service", "sshd"),
    ("sshd.service", "sshd"),
    ("syslog.target", "logger"),
    ("systemd-journald.service", "logger"),
    ("systemd-udevd.service", "udev"),
    ("time-sync.target", "ntp-client"),
    ("udev.service", "udev"),
];

/// Targets that only order a unit against the boot as a whole: OpenRC gets that
/// order from runlevels (sysinit, boot, default), so they map to no depend() entry.
pub const IMPLICIT_TARGETS: &[&str] = &[
    "basic.target",
    "default.target",
    "graphical.target",
    "multi-user.target",
    "paths.target",
    "sockets.target",
    "swap.target",
    "sysinit.target",
    "timers.target",
];

/// `[Install] WantedBy=` targets -> the OpenRC runlevel the service is enabled in.
pub const RUNLEVEL_MAP: &[(&str, &str)] = &[
    ("basic.target", "boot"),
    ("default.target", "default"),
    ("graphical.target", "default"),
    ("local-fs.target", "boot"),
    ("multi-user.target", "default"),
    ("sockets.target", "boot"),
    ("sysinit.target", "sysinit"),
];

/// How a dependency on another unit maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// An OpenRC service name.
    Service(String),
    /// Mapped to a service, with a note of what differs.
    Approximate(String, String),
    /// Nothing to write: the runlevel order already does it (the reason says how).
    Implicit(String),
    /// No OpenRC counterpart (the reason says why).
    None(String),
}

/// Maps a systemd unit name to the OpenRC service a depend() line should name.
pub fn map_unit(unit: &str) -> Mapped {
    if let Some((_, svc)) = SERVICE_MAP.iter().find(|(u, _)| *u == unit) {
        return Mapped::Service((*svc).to_string());
    }
    if IMPLICIT_TARGETS.contains(&unit) {
        return Mapped::Implicit(format!("{unit} has no OpenRC counterpart: the runlevel order stands for it"));
    }
    match unit.rsplit_once('.') {
        Some((stem, "service")) if !stem.ends_with('@') => Mapped::Service(service_name(stem)),
        Some((_, "mount")) => Mapped::Approximate(
            "localmount".to_string(),
            "mount units are fstab entries under OpenRC, mounted by `localmount`".to_string(),
        ),
        _ => Mapped::None(format!("{unit} has no OpenRC counterpart in the mapping table")),
    }
}

/// The OpenRC service name of a service unit's stem: a template instance
/// `getty@tty1` becomes `getty.tty1`, OpenRC's multiplexed-service form.
pub fn service_name(stem: &str) -> String {
    stem.replacen('@', ".", 1)
}

/// The OpenRC service a `.service` unit is installed as: its name in
/// [`SERVICE_MAP`] (`ModemManager.service` -> `modemmanager`), else from its stem.
pub fn service_for_unit(unit: &str) -> Option<String> {
    if let Some((_, svc)) = SERVICE_MAP.iter().find(|(u, _)| *u == unit && u.ends_with(".service")) {
        return Some((*svc).to_string());
    }
    unit.strip_suffix(".service").filter(|s| !s.is_empty() && !s.ends_with('@')).map(service_name)
}

/// The runlevel a `WantedBy=`/`RequiredBy=` target enables a service in.
pub fn runlevel_for(target: &str) -> Option<&'static str> {
    RUNLEVEL_MAP.iter().find(|(t, _)| *t == target).map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_units_map_to_openrc_names() {
        assert_eq!(map_unit("network.target"), Mapped::Service("net".into()));
        assert_eq!(map_unit("gpio.service"), Mapped::Service("gpio".into()));
        assert_eq!(map_unit("serial-getty@ttyMSM0.service"), Mapped::Service("serial-getty.ttyMSM0".into()));
        assert!(matches!(map_unit("data.mount"), Mapped::Approximate(s, _) if s == "localmount"));
        assert!(matches!(map_unit("multi-user.target"), Mapped::Implicit(_)));
        assert!(matches!(map_unit("printer.target"), Mapped::None(_)));
        assert_eq!(runlevel_for("multi-user.target"), Some("default"));
    }

    #[test]
    fn tables_are_sorted_for_review() {
        for table in [SERVICE_MAP, RUNLEVEL_MAP] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}
