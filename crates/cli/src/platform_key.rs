//! `ocpay platform-key`: print the platform's public key, or rotate and retire versions.

use ocpay_server::data_dir::PlatformKeys;

use crate::data::DataArgs;

#[derive(clap::Args)]
pub(crate) struct PlatformKeyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Make a new key version; it signs from the server's next start, and the older versions
    /// stay published until retired.
    #[arg(long, conflicts_with = "retire")]
    rotate: bool,
    /// Stop publishing an older version (after the overlap, once clients use the new key).
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
        eprintln!("platform key version {version} signs from the next start of the server");
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
