//! `addgroup` and `adduser` lines of install scripts, carried out on `/etc/group`,
//! `/etc/passwd` and `/etc/shadow` the way busybox's applets edit them.

use crate::fstree::{FsTree, Kind};

use super::{Error, Result};

/// busybox's CONFIG_FIRST_SYSTEM_ID..=CONFIG_LAST_SYSTEM_ID as Alpine configures it.
const SYSTEM_IDS: std::ops::RangeInclusive<u32> = 100..=999;
const USER_IDS: std::ops::RangeInclusive<u32> = 1000..=64999;

/// Splits a command line into words with sh quoting (`'...'`, `"..."`, `\x`); `None` for
/// anything with expansions, pipes, lists or redirections, whose effect is not known.
pub fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => out.extend(cur.take()),
            '\'' => cur.get_or_insert_with(String::new).extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    match c {
                        '"' => break,
                        '$' | '`' | '\\' => return None,
                        c => w.push(c),
                    }
                }
            }
            '\\' => cur.get_or_insert_with(String::new).push(chars.next()?),
            '$' | '`' | '|' | '&' | ';' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '{' | '}' => return None,
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    Some(out)
}

/// A colon-separated database in the tree: lines of fields.
struct Table {
    path: &'static str,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(tree: &FsTree, path: &'static str, what: &str) -> Result<Table> {
        let text = match tree.get(path).map(|n| &n.kind) {
            None => String::new(),
            Some(Kind::File(c)) => {
                let bytes = c.read_all().map_err(|e| Error::format(what, format!("{path}: {e}")))?;
                String::from_utf8(bytes).map_err(|_| Error::format(what, format!("{path} is not UTF-8")))?
            }
            Some(_) => return Err(Error::format(what, format!("{path} is not a regular file"))),
        };
        let rows = text.lines().filter(|l| !l.is_empty()).map(|l| l.split(':').map(str::to_owned).collect()).collect();
        Ok(Table { path, rows })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.rows.iter().position(|r| r.first().is_some_and(|n| n == name))
    }

    fn id_used(&self, id: u32) -> bool {
        self.rows.iter().any(|r| r.get(2).is_some_and(|v| v.parse() == Ok(id)))
    }

    fn free_id(&self, system: bool, what: &str) -> Result<u32> {
        let mut range = if system { SYSTEM_IDS } else { USER_IDS };
        range.find(|&id| !self.id_used(id)).ok_or_else(|| Error::format(what, format!("{}: no free id", self.path)))
    }

    fn write(&self, tree: &mut FsTree, mode: u32, what: &str) -> Result<()> {
        let text: String = self.rows.iter().map(|r| format!("{}\n", r.join(":"))).collect();
        let (uid, gid, mode) = match tree.get(self.path) {
            Some(n) => (n.meta.uid, n.meta.gid, n.meta.mode),
            None => (0, 0, mode),
        };
        let err = |e: crate::fstree::FsTreeError| Error::format(what, e.to_string());
        tree.mkdir_p("/etc", 0o755).map_err(err)?;
        tree.write(self.path, text, mode).map_err(err)?;
        tree.chown(self.path, uid, gid).map_err(err)
    }
}

/// Options of `addgroup`/`adduser` that take a value, and flags.
struct Args {
    values: Vec<(char, String)>,
    flags: Vec<char>,
    names: Vec<String>,
}

fn parse_args(args: &[String], with_value: &str, flags: &str) -> Option<Args> {
    let mut a = Args { values: vec![], flags: vec![], names: vec![] };
    let mut it = args.iter();
    while let Some(w) = it.next() {
        match w.strip_prefix('-') {
            Some(opts) if !opts.is_empty() => {
                for (i, c) in opts.char_indices() {
                    if with_value.contains(c) {
                        let rest = &opts[i + 1..];
                        let v = if rest.is_empty() { it.next()?.clone() } else { rest.to_owned() };
                        a.values.push((c, v));
                        break;
                    } else if flags.contains(c) {
                        a.flags.push(c);
                    } else {
                        return None;
                    }
                }
            }
            _ => a.names.push(w.clone()),
        }
    }
    Some(a)
}

impl Args {
    fn value(&self, c: char) -> Option<&str> {
        self.values.iter().rev().find(|(k, _)| *k == c).map(|(_, v)| v.as_str())
    }
}

fn parse_id(v: Option<&str>, what: &str) -> Result<Option<u32>> {
    v.map(|v| v.parse().map_err(|_| Error::format(what, format!("{v:?} is not a numeric id")))).transpose()
}

/// `addgroup [-S] [-g GID] GROUP` or `addgroup USER GROUP`; `None` for other forms.
pub fn addgroup(tree: &mut FsTree, args: &[String], what: &str) -> Result<Option<String>> {
    let Some(a) = parse_args(args, "g", "S") else { return Ok(None) };
    let mut groups = Table::read(tree, "/etc/group", what)?;
    let done = match a.names.as_slice() {
        [group] => {
            let gid = parse_id(a.value('g'), what)?;
            add_group(&mut groups, group, gid, a.flags.contains(&'S'), what)?
        }
        [user, group] => add_member(&mut groups, user, group),
        _ => return Ok(None),
    };
    groups.write(tree, 0o644, what)?;
    Ok(Some(done))
}

fn add_group(groups: &mut Table, name: &str, gid: Option<u32>, system: bool, what: &str) -> Result<String> {
    if let Some(i) = groups.find(name) {
        return Ok(format!("group {name} exists (gid {}): not changed", groups.rows[i].get(2).map_or("", |g| g)));
    }
    let gid = match gid {
        Some(g) if groups.id_used(g) => return Ok(format!("gid {g} in use: group {name} not added")),
        Some(g) => g,
        None => groups.free_id(system, what)?,
    };
    groups.rows.push(vec![name.to_owned(), "x".into(), gid.to_string(), String::new()]);
    Ok(format!("group {name} added to /etc/group (gid {gid})"))
}

fn add_member(groups: &mut Table, user: &str, group: &str) -> String {
    let Some(i) = groups.find(group) else { return format!("group {group} does not exist: {user} not added") };
    let row = &mut groups.rows[i];
    row.resize(4, String::new());
    let mut members: Vec<&str> = row[3].split(',').filter(|m| !m.is_empty()).collect();
    if members.contains(&user) {
        return format!("{user} already in group {group}");
    }
    members.push(user);
    row[3] = members.join(",");
    format!("{user} added to group {group} in /etc/group")
}

/// `adduser [-S -D -H] [-h HOME] [-s SHELL] [-g GECOS] [-G GROUP] [-u UID] [-k SKEL] USER`,
/// as busybox's `adduser_main`: a system user without `-G` joins `nogroup` and gets
/// `/bin/false`; without a group a user gets its own (gid = uid, the uid chosen free in
/// both files); the user becomes a member of the group; `/etc/shadow` gets `name:!:DAYS:...`
/// only if it exists; the home is made 02755 owned by the user unless `-H` (the `/etc/skel`
/// copy is not done).
pub fn adduser(tree: &mut FsTree, args: &[String], what: &str) -> Result<Option<String>> {
    let Some(a) = parse_args(args, "hsgGuk", "SDH") else { return Ok(None) };
    let [user] = a.names.as_slice() else { return Ok(None) };
    let mut passwd = Table::read(tree, "/etc/passwd", what)?;
    if passwd.find(user).is_some() {
        return Ok(Some(format!("user {user} exists: not changed")));
    }
    let system = a.flags.contains(&'S');
    let mut groups = Table::read(tree, "/etc/group", what)?;
    let group = a.value('G').or(system.then_some("nogroup"));
    let gid = match group {
        Some(g) => match groups.find(g) {
            Some(i) => Some(groups.rows[i].get(2).cloned().unwrap_or_default()),
            None => return Err(Error::format(what, format!("adduser {user}: group {g} does not exist"))),
        },
        None => None,
    };
    let uid = match parse_id(a.value('u'), what)? {
        Some(u) => u,
        None => {
            let mut range = if system { SYSTEM_IDS } else { USER_IDS };
            let free = |id: &u32| !passwd.id_used(*id) && (gid.is_some() || !groups.id_used(*id));
            range.find(free).ok_or_else(|| Error::format(what, format!("adduser {user}: no free uid")))?
        }
    };
    let mut done = Vec::new();
    let gid = match gid {
        Some(g) => g,
        None => {
            done.push(add_group(&mut groups, user, Some(uid), false, what)?);
            uid.to_string()
        }
    };
    if let Some(g) = group {
        done.push(add_member(&mut groups, user, g));
    }
    let home = a.value('h').map_or_else(|| format!("/home/{user}"), str::to_owned);
    let root_shell = passwd.find("root").and_then(|i| passwd.rows[i].get(6).cloned());
    let shell = match a.value('s') {
        Some(s) => s.to_owned(),
        None if system => "/bin/false".to_owned(),
        None => root_shell.unwrap_or_else(|| "/bin/sh".to_owned()),
    };
    let gecos = a.value('g').unwrap_or("Linux User,,,");
    passwd.rows.push([user, "x", &uid.to_string(), &gid, gecos, &home, &shell].map(str::to_owned).to_vec());
    passwd.write(tree, 0o644, what)?;
    if tree.get("/etc/shadow").is_some() {
        let days = (tree.epoch().max(0) / 86_400).to_string();
        let mut shadow = Table::read(tree, "/etc/shadow", what)?;
        shadow.rows.push([user, "!", &days, "0", "99999", "7", "", "", ""].map(str::to_owned).to_vec());
        shadow.write(tree, 0o640, what)?;
        done.push(format!("{user} locked in /etc/shadow"));
    }
    groups.write(tree, 0o644, what)?;
    if !a.flags.contains(&'H') {
        done.push(make_home(tree, &home, uid, &gid, what)?);
    }
    done.insert(0, format!("user {user} added to /etc/passwd (uid {uid}, gid {gid}, home {home}, shell {shell})"));
    Ok(Some(done.join("; ")))
}

fn make_home(tree: &mut FsTree, home: &str, uid: u32, gid: &str, what: &str) -> Result<String> {
    let err = |e: crate::fstree::FsTreeError| Error::format(what, e.to_string());
    let gid: u32 = gid.parse().map_err(|_| Error::format(what, format!("/etc/group: gid {gid:?} is not numeric")))?;
    tree.mkdir_p(home, 0o755).map_err(err)?;
    tree.chown(home, uid, gid).map_err(err)?;
    tree.chmod(home, 0o2755).map_err(err)?;
    Ok(format!("home {home} made 2755 {uid}:{gid}"))
}
