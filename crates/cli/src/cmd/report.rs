//! `wattprint report`: not built yet (see the open issues).

/// Options of `wattprint report`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    Err(
        crate::exit::BadInput("`wattprint report` is not available in this build yet".into())
            .into(),
    )
}
