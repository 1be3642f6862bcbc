//! `wattprint estimate`: not built yet (see the open issues).

/// Options of `wattprint estimate`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(
        crate::exit::BadInput("`wattprint estimate` is not available in this build yet".into())
            .into(),
    )
}
