//! The child datasets of a dataset and where they are mounted, read from a
//! `pool.dataset.query` answer.
//!
//! Middleware's answers differ by release: up to 25.04 the top-level
//! `mountpoint` is where the dataset is mounted now (`null` when it is not),
//! later releases may give the `mountpoint` property as it is set (`none`,
//! `legacy`, a path) with a separate `mounted` property. Entries may come
//! flat or nested in `children` (`extra.flat`); both are read.

use serde_json::Value;

/// Where a child dataset's files can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// Mounted at this absolute path on the NAS.
    At(String),
    /// Not mounted, and why, for a person: `mountpoint=none`, `legacy`, …
    NotMounted(String),
}

/// A descendant of the queried dataset (children, grandchildren, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildDataset {
    /// `tank/media/photos`.
    pub name: String,
    pub mount: Mount,
}

/// The descendants of `dataset` among `answer`'s entries (and their nested
/// `children`), sorted by name. Entries that are not descendants are
/// dropped: the query's filter is checked again here, since REST and older
/// releases may answer more than was asked.
pub fn parse_children(dataset: &str, answer: &Value) -> Result<Vec<ChildDataset>, String> {
    let Some(entries) = answer.as_array() else {
        return Err(format!("the dataset list is not a list: {answer}"));
    };
    let prefix = format!("{dataset}/");
    let mut found = Vec::new();
    let mut pending: Vec<&Value> = entries.iter().collect();
    while let Some(entry) = pending.pop() {
        if let Some(children) = entry.get("children").and_then(Value::as_array) {
            pending.extend(children);
        }
        let Some(name) = entry.get("id").or_else(|| entry.get("name")).and_then(Value::as_str) else {
            continue;
        };
        if name.starts_with(&prefix) {
            found.push(ChildDataset { name: name.to_owned(), mount: mount_of(entry) });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.name == b.name);
    Ok(found)
}

/// A property as middleware shows it: a bare value, or `{parsed, rawvalue, value}`.
fn property(entry: &Value, name: &str) -> Option<Value> {
    let value = entry.get(name).or_else(|| entry.get("properties").and_then(|p| p.get(name)))?;
    match value {
        Value::Object(map) => map.get("rawvalue").or_else(|| map.get("parsed")).or_else(|| map.get("value")).cloned(),
        other => Some(other.clone()),
    }
}

fn mount_of(entry: &Value) -> Mount {
    if entry.get("type").and_then(Value::as_str) == Some("VOLUME") {
        return Mount::NotMounted("it is a volume (zvol), which has no files to read".to_owned());
    }
    let mounted = property(entry, "mounted");
    if matches!(&mounted, Some(Value::Bool(false))) || matches!(&mounted, Some(Value::String(s)) if s == "no") {
        return Mount::NotMounted("it is not mounted".to_owned());
    }
    match property(entry, "mountpoint") {
        Some(Value::String(path)) if path.starts_with('/') => Mount::At(path),
        Some(Value::String(other)) if other == "legacy" => {
            Mount::NotMounted("its mountpoint is legacy (mounted outside TrueNAS's control)".to_owned())
        }
        Some(Value::String(other)) => Mount::NotMounted(format!("its mountpoint is {other}")),
        _ => Mount::NotMounted("it is not mounted (no mountpoint)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_and_nested_answers_give_the_descendants_sorted() {
        let answer = json!([
            {"id": "tank/data/b", "type": "FILESYSTEM", "mountpoint": "/mnt/tank/data/b", "children": [
                {"id": "tank/data/b/c", "mountpoint": "/mnt/tank/data/b/c", "children": []},
            ]},
            {"id": "tank/data/a", "mountpoint": null},
            {"id": "tank/data", "mountpoint": "/mnt/tank/data"},
            {"id": "tank/database", "mountpoint": "/mnt/tank/database"},
            {"id": "tank/data/b/c", "mountpoint": "/mnt/tank/data/b/c"},
        ]);
        let children = parse_children("tank/data", &answer).unwrap();
        let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["tank/data/a", "tank/data/b", "tank/data/b/c"]);
        assert!(matches!(children[0].mount, Mount::NotMounted(_)));
        assert_eq!(children[2].mount, Mount::At("/mnt/tank/data/b/c".into()));
        assert!(parse_children("tank/data", &json!({"x": 1})).is_err());
    }

    #[test]
    fn mountpoints_none_legacy_unmounted_and_volumes_are_not_mounted() {
        let mount = |entry: Value| mount_of(&entry);
        assert_eq!(mount(json!({"mountpoint": "/mnt/x"})), Mount::At("/mnt/x".into()));
        assert_eq!(mount(json!({"properties": {"mountpoint": {"rawvalue": "/mnt/y"}}})), Mount::At("/mnt/y".into()));
        for entry in [
            json!({"mountpoint": "none"}),
            json!({"mountpoint": "legacy"}),
            json!({"mountpoint": null}),
            json!({}),
            json!({"mountpoint": "/mnt/x", "mounted": {"parsed": false, "rawvalue": "no"}}),
            json!({"mountpoint": "/mnt/x", "mounted": false}),
            json!({"type": "VOLUME", "mountpoint": null}),
        ] {
            assert!(matches!(mount(entry.clone()), Mount::NotMounted(_)), "{entry}");
        }
        let Mount::NotMounted(why) = mount(json!({"mountpoint": "legacy"})) else { unreachable!() };
        assert!(why.contains("legacy"), "{why}");
    }
}
