//! The `magic` service: the AGNOS process that owns the display (DRM master),
//! draws the boot logo and hands the DRM fd to openpilot. The real image starts
//! `/usr/comma/magic.py` at boot from comma's `magic.service` and the Alpine image
//! must write its log to `/var/log/magic.log`.
//!
//! [`MAGIC_UNIT`] is that unit as the inventory (section 5.1) describes it: the
//! pinned agnos-builder checkout is not readable here, so the text is rebuilt from
//! the facts recorded there. The system recipe should convert the unit from the
//! pinned checkout with [`magic_override`]; [`magic_service`] converts this copy.

use super::convert::{convert_unit, Conversion, Override};
use super::Error;

/// Where the magic service's stdout and stderr go.
pub const MAGIC_LOG: &str = "/var/log/magic.log";

/// comma's magic.service, rebuilt from the inventory: root-run pre-steps giving
/// the gpu group the GPU devices and zeroing the display debug configs, then the
/// venv python running magic.py as `comma` with /etc/profile sourced.
pub const MAGIC_UNIT: &str = r#"[Unit]
Description=magic: display owner, boot logo and DRM fd broker

[Service]
Type=simple
User=comma
PermissionsStartOnly=true
ExecStartPre=/bin/sh -c "chgrp gpu /dev/ion /dev/kgsl-3d0; chmod 660 /dev/ion /dev/kgsl-3d0"
ExecStartPre=/bin/mkdir -p /data/misc/display
ExecStartPre=/bin/sh -c "echo 0 > /data/misc/display/sdm_dbg_cfg.txt"
ExecStartPre=/bin/sh -c "echo 0 > /data/misc/display/gbm_dbg_cfg.txt"
ExecStart=/bin/bash -c "source /etc/profile && exec /usr/local/venv/bin/python -u /usr/comma/magic.py"

[Install]
WantedBy=multi-user.target
"#;

/// What the Alpine image changes in magic.service: supervised with respawn (the
/// display must come back if magic.py dies), stdout and stderr appended to
/// [`MAGIC_LOG`] (created for `comma` before start), after the local filesystems.
pub fn magic_override() -> Override {
    let mut ov = Override::default();
    for (k, v) in [
        ("supervisor", Some("supervise-daemon")),
        ("respawn_delay", Some("2")),
        ("output_log", Some(MAGIC_LOG)),
        ("error_log", Some(MAGIC_LOG)),
        ("command_background", None),
        ("pidfile", None),
    ] {
        ov.vars.insert(k.to_string(), v.map(str::to_string));
    }
    ov.depend.push(("need".to_string(), "localmount".to_string()));
    ov.depend.push(("after".to_string(), "udev".to_string()));
    ov.start_pre.push(format!("checkpath -f -o comma:comma -m 0644 {MAGIC_LOG} &&"));
    ov
}

/// The magic service's init script (`/etc/init.d/magic`), enabled in `default`.
pub fn magic_service() -> Result<Conversion, Error> {
    convert_unit("magic.service", MAGIC_UNIT, &magic_override())
}
