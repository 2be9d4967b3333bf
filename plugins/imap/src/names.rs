//! How folders and messages are named in the backup.
//!
//! A folder `Archiv/2024` becomes the directory `Archiv/2024/` (decoded UTF-8
//! names, `/` between levels whatever the server's delimiter), a Maildir with
//! `cur/`, `new/` and `tmp/`. A message is `cur/<uid, 10 digits>.<uidvalidity>.imap`:
//! bytewise order is UID order, and the name never changes while the
//! message's flags do (they are attributes), only when the folder's
//! UIDVALIDITY does (then every UID is void and the folder is read anew).

/// One level of a folder name as a path component.
///
/// Reversible: `%` is written `%25` and `/` `%2F`, so a `/` inside a level
/// (a server whose delimiter is `.`) cannot make a level of its own; names
/// that a path cannot hold or that would collide with a Maildir's own
/// directories (`""`, `.`, `..`, `cur`, `new`, `tmp`) get their first
/// character escaped (`%63ur`), the empty name is `%`.
pub fn component(level: &str) -> String {
    match level {
        "" => return "%".into(),
        "." => return "%2E".into(),
        ".." => return "%2E.".into(),
        "cur" => return "%63ur".into(),
        "new" => return "%6Eew".into(),
        "tmp" => return "%74mp".into(),
        _ => {}
    }
    level.replace('%', "%25").replace('/', "%2F")
}

/// The folder level a path component stands for (the inverse of [`component`]).
pub fn level(component: &str) -> String {
    if component == "%" {
        return String::new();
    }
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| component.to_string())
}

/// The levels of a folder's decoded name, split at the server's delimiter.
pub fn levels<'a>(name: &'a str, delimiter: Option<&str>) -> Vec<&'a str> {
    match delimiter {
        Some(d) if !d.is_empty() => name.split(d).collect(),
        _ => vec![name],
    }
}

/// A message's file name in `cur/`.
pub fn message_file(uid: u32, uid_validity: u32) -> String {
    format!("{uid:010}.{uid_validity}.imap")
}

/// The UID and UIDVALIDITY in a message's file name.
pub fn parse_message_file(name: &[u8]) -> Option<(u32, u32)> {
    let name = std::str::from_utf8(name).ok()?.strip_suffix(".imap")?;
    let (uid, validity) = name.split_once('.')?;
    Some((uid.parse().ok()?, validity.parse().ok()?))
}

/// Maildir's info part for `flags`: `2,` and the letters D (draft), F
/// (flagged), R (answered), S (seen), T (deleted), in ASCII order.
pub fn maildir_info(flags: &[String]) -> String {
    let mut info = String::from("2,");
    for (flag, letter) in
        [("\\Draft", 'D'), ("\\Flagged", 'F'), ("\\Answered", 'R'), ("\\Seen", 'S'), ("\\Deleted", 'T')]
    {
        if flags.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            info.push(letter);
        }
    }
    info
}

/// The `imap.flags` attribute: the flags as the server spells them, in its
/// order, without `\Recent`.
pub fn flags_attribute(flags: &[String]) -> String {
    let kept: Vec<&str> = flags.iter().map(String::as_str).filter(|f| !f.eq_ignore_ascii_case("\\Recent")).collect();
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_escaped_reversibly() {
        assert_eq!(component("Entwürfe"), "Entwürfe");
        assert_eq!(component("日本語"), "日本語");
        assert_eq!(component("a/b"), "a%2Fb");
        assert_eq!(component("100%"), "100%25");
        assert_eq!(component("cur"), "%63ur");
        assert_eq!(component(".."), "%2E.");
        assert_eq!(component(""), "%");
        for name in ["Entwürfe", "a/b", "100%", "cur", "new", "tmp", ".", "..", "", "%41"] {
            assert_eq!(level(&component(name)), name);
        }
        assert_eq!(levels("Archiv.2024", Some(".")), vec!["Archiv", "2024"]);
        assert_eq!(levels("INBOX", None), vec!["INBOX"]);
    }

    #[test]
    fn message_names_sort_by_uid_and_parse_back() {
        let (a, b) = (message_file(9, 77), message_file(10, 77));
        assert_eq!(a, "0000000009.77.imap");
        assert!(a < b);
        assert_eq!(parse_message_file(b.as_bytes()), Some((10, 77)));
        assert_eq!(parse_message_file(b"x.imap"), None);
    }

    #[test]
    fn maildir_info_letters_in_ascii_order() {
        let flags: Vec<String> =
            ["\\Seen", "\\Answered", "$Forwarded", "\\Draft", "\\Flagged", "\\Deleted", "\\Recent"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(maildir_info(&flags), "2,DFRST");
        assert_eq!(maildir_info(&[]), "2,");
        assert_eq!(flags_attribute(&flags), "\\Seen \\Answered $Forwarded \\Draft \\Flagged \\Deleted");
    }
}
