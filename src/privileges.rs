//! Running as an ordinary user. Started as root to bind port 843, the gateway becomes
//! `--user NAME` once its listeners are bound, before it reads a byte from a client; the
//! user is looked up while the configuration is checked, so a name that does not exist
//! stops the start (and `--check`) rather than the drop.

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User, geteuid, setgid, setgroups, setuid};

/// The user to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// As given.
    pub name: String,
    uid: Uid,
    gid: Gid,
}

impl RunAs {
    /// Looks `name` up in the system's user database.
    pub fn look_up(name: &str) -> anyhow::Result<RunAs> {
        let user = User::from_name(name)
            .with_context(|| format!("cannot look up the user {name:?}"))?
            .with_context(|| format!("there is no user {name:?} on this system"))?;
        Ok(RunAs {
            name: name.to_string(),
            uid: user.uid,
            gid: user.gid,
        })
    }
}

/// True when the process runs as root.
pub fn is_root() -> bool {
    geteuid().is_root()
}

/// Becomes `user`: its group alone, then its user id, for every thread of the process. Not
/// root and already `user` (a service manager started it so) is fine; not root and someone
/// else cannot become anyone.
pub fn drop_to(user: &RunAs) -> anyhow::Result<()> {
    if !is_root() {
        if geteuid() == user.uid {
            return Ok(());
        }
        bail!(
            "--user {}: only root can become another user, and flashgate runs as uid {}",
            user.name,
            geteuid()
        );
    }
    let fail = |what: &str| format!("cannot become the user {} ({what})", user.name);
    setgroups(&[user.gid]).with_context(|| fail("its groups"))?;
    setgid(user.gid).with_context(|| fail("its group"))?;
    setuid(user.uid).with_context(|| fail("its uid"))?;
    // Nothing of root may be left to take back.
    if !user.uid.is_root() && setuid(Uid::from_raw(0)).is_ok() {
        bail!(
            "{}: root could be taken back",
            fail("the drop did not hold")
        );
    }
    Ok(())
}
