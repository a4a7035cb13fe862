//! `ocpay platform-key`: print the platform's public key, or rotate, activate and retire
//! versions.

use ocpay_server::data_dir::PlatformKeys;

use crate::data::DataArgs;

#[derive(clap::Args)]
pub(crate) struct PlatformKeyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Make a new key version: published at once, but the signing version goes on signing
    /// until --activate names the new one.
    #[arg(long, conflicts_with_all = ["retire", "activate"])]
    rotate: bool,
    /// Make a published version the signing one: every server on this data directory signs
    /// with it within a second.
    #[arg(long, value_name = "KEY_VERSION", conflicts_with = "retire")]
    activate: Option<u32>,
    /// Stop publishing a version that no longer signs (after the overlap, once clients use the
    /// new key). The signing version is refused.
    #[arg(long, value_name = "KEY_VERSION")]
    retire: Option<u32>,
    /// Print every published version as JSON instead of the signing key's PEM.
    #[arg(long)]
    all: bool,
}

pub(crate) fn run(args: PlatformKeyArgs) -> anyhow::Result<()> {
    let data_dir = args.data.data_dir(&args.data.config()?)?;
    if args.rotate {
        let version = data_dir.rotate_platform_key()?;
        eprintln!(
            "platform key version {version} is published; it signs once `ocpay platform-key --activate {version}` makes it"
        );
    }
    if let Some(version) = args.activate {
        data_dir.activate_platform_key(version)?;
        eprintln!(
            "platform key version {version} signs: servers on this data directory take it up within a second"
        );
    }
    if let Some(version) = args.retire {
        data_dir.retire_platform_key(version)?;
        eprintln!("platform key version {version} is no longer published");
    }
    let keys = data_dir.platform_keys()?;
    if args.all {
        crate::print_json(&PlatformKeys::published_json(&keys.published, keys.version))
    } else {
        crate::print_stdout(&keys.signing.verifying_key().to_pem())
    }
}
