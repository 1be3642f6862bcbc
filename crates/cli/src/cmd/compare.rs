//! `wattprint compare`: not built yet (see the open issues).

/// Options of `wattprint compare`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(
        crate::exit::BadInput("`wattprint compare` is not available in this build yet".into())
            .into(),
    )
}
