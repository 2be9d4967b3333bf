use super::*;
use orchestrator_sftp::{ErrorKind, TEMP_PREFIX};
use std::fs;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use test_servers::sshd::SshdOptions;

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn commit_renames_the_temporary_into_place() {
    let Some(sshd) = Sshd::start() else { return };
    let sftp = connect(&sshd);
    let dir = sshd.data_dir();
    let dest = dir.join("duplicity-full.vol1.difftar.gpg");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = sftp.create_temp_and_rename(&dest).unwrap();
    writer.write_all(&content).unwrap();
    writer.flush().unwrap();
    let during = names_in(&dir);
    assert_eq!(during.len(), 1, "{during:?}");
    assert!(during[0].starts_with(TEMP_PREFIX), "{during:?}");
    assert_eq!(sftp.lstat(&dest).unwrap_err().kind(), ErrorKind::NotFound, "no object before commit");
    assert!(sftp.list_recursive(&dir).unwrap().is_empty(), "listings skip temporaries");
    writer.commit().unwrap();
    assert_eq!(names_in(&dir), ["duplicity-full.vol1.difftar.gpg"]);
    assert_eq!(fs::read(&dest).unwrap(), content);
    assert_eq!(sftp.lstat(&dest).unwrap().mode, 0o600);
}

#[test]
fn drop_without_commit_leaves_nothing() {
    let Some(sshd) = Sshd::start() else { return };
    let sftp = connect(&sshd);
    let dir = sshd.data_dir();
    let mut writer = sftp.create_temp_and_rename(dir.join("abandoned")).unwrap();
    writer.write_all(&[7u8; 2_000_000]).unwrap();
    drop(writer);
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
    // An empty one too.
    drop(sftp.create_temp_and_rename(dir.join("empty")).unwrap());
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
}

/// Replace one object 12 times while another thread reads it locally in a
/// loop: (times it was read whole, times it was missing after it first appeared).
fn replace_while_reading(sshd: &Sshd) -> (u32, u32) {
    let sftp = connect(sshd);
    const SIZE: usize = 1 << 20;
    let dest = sshd.data_dir().join("manifest");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dest, done) = (dest.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut whole, mut missing) = (0u32, 0u32);
            while !done.load(Ordering::Relaxed) {
                match fs::read(&dest) {
                    Ok(data) => {
                        assert_eq!(data.len(), SIZE, "a reader saw a partial object");
                        assert!(data.iter().all(|&b| b == data[0]), "a reader saw mixed versions");
                        whole += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing += u32::from(whole > 0),
                    Err(e) => panic!("{e}"),
                }
            }
            (whole, missing)
        })
    };
    for version in 0..12u8 {
        let mut writer = sftp.create_temp_and_rename(&dest).unwrap();
        for _ in 0..4 {
            writer.write_all(&vec![version; SIZE / 4]).unwrap();
        }
        writer.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap()[0], version, "version {version} replaced the object");
        // Let the reader see each version.
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    eprintln!("the reader saw the whole object {} times and no object {} times", seen.0, seen.1);
    assert_eq!(names_in(&sshd.data_dir()), ["manifest"], "no temporaries left");
    seen
}

#[test]
fn a_reader_never_sees_half_an_object() {
    let Some(sshd) = Sshd::start() else { return };
    let (whole, missing) = replace_while_reading(&sshd);
    assert!(whole > 0);
    assert_eq!(missing, 0, "posix-rename replaces the object atomically");
}

#[test]
fn without_posix_rename_replacing_still_never_shows_half_an_object() {
    let options = SshdOptions { denied_sftp_requests: vec!["posix-rename".into()], ..Default::default() };
    let Some(sshd) = Sshd::start_with(options) else { return };
    let (whole, _missing) = replace_while_reading(&sshd);
    assert!(whole > 0);
}

#[test]
fn remove_mkdir_all_and_list_recursive() {
    let Some(sshd) = Sshd::start() else { return };
    let sftp = connect(&sshd);
    let root = sshd.data_dir().join("target");
    assert!(sftp.list_recursive(&root).unwrap().is_empty(), "a target nobody wrote to yet");

    sftp.mkdir_all(root.join("homelab/docs")).unwrap();
    sftp.mkdir_all(root.join("homelab/docs")).unwrap();
    sftp.mkdir_all(root.join("homelab/mail/")).unwrap();
    assert!(root.join("homelab/docs").is_dir() && root.join("homelab/mail").is_dir());
    for (name, size) in [("homelab/docs/a.gpg", 10), ("homelab/docs/b.gpg", 0), ("homelab/mail/c", 3), ("top", 1)] {
        let mut w = sftp.create_temp_and_rename(root.join(name)).unwrap();
        w.write_all(&vec![1u8; size]).unwrap();
        w.commit().unwrap();
    }
    fs::write(root.join(format!("homelab/{TEMP_PREFIX}debris")), "x").unwrap();
    std::os::unix::fs::symlink("top", root.join("homelab/link")).unwrap();
    fs::create_dir(root.join("homelab/empty")).unwrap();
    let listed = sftp.list_recursive(&root).unwrap();
    let expected = [("homelab/docs/a.gpg", 10), ("homelab/docs/b.gpg", 0), ("homelab/mail/c", 3), ("top", 1)];
    assert_eq!(listed, expected.map(|(n, s)| (n.to_string(), s as u64)));
    let under = sftp.list_recursive(root.join("homelab/docs")).unwrap();
    assert_eq!(under, [("a.gpg".to_string(), 10), ("b.gpg".to_string(), 0)]);

    sftp.remove(root.join("homelab/docs/a.gpg")).unwrap();
    assert!(!root.join("homelab/docs/a.gpg").exists());
    let e = sftp.remove(root.join("homelab/docs/a.gpg")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    let e = sftp.mkdir_all(root.join("top/below")).unwrap_err();
    assert!(e.to_string().contains("top"), "{e}");
    assert_eq!(sftp.create_temp_and_rename(root.join("no/such/dir/x")).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn read_only_server_denies_writes() {
    let Some(sshd) = Sshd::start_with(SshdOptions { read_only: true, ..Default::default() }) else { return };
    let sftp = connect(&sshd);
    let dir = sshd.data_dir();
    fs::write(dir.join("existing"), "x").unwrap();
    let errors = [
        sftp.create_temp_and_rename(dir.join("new")).map(|_| ()).unwrap_err(),
        sftp.mkdir_all(dir.join("newdir")).unwrap_err(),
        sftp.remove(dir.join("existing")).unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("{}@127.0.0.1:{}: permission denied", sshd.user(), sshd.port())), "{text}");
    }
    assert_eq!(names_in(&dir), ["existing"]);
}
