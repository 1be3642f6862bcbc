//! Fake sysfs and procfs trees for tests (of this crate and of everything above it), laid out
//! as the kernel lays them out. Counters are rewritten in place with fixed-width values, so a
//! concurrent reader never sees a half-written or empty file.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A fake `class/powercap` tree with RAPL zones under `root` (use it as `WATTPRINT_SYSFS_ROOT`).
#[derive(Clone, Debug)]
pub struct FakeRaplTree {
    root: PathBuf,
}

impl FakeRaplTree {
    /// Create the control-type directory `intel-rapl` (which has no `energy_uj`).
    pub fn new(root: &Path) -> io::Result<FakeRaplTree> {
        let t = FakeRaplTree {
            root: root.to_path_buf(),
        };
        std::fs::create_dir_all(t.devices())?;
        std::fs::create_dir_all(root.join("class/powercap"))?;
        std::fs::write(t.devices().join("enabled"), "1\n")?;
        symlink_if_absent(&t.devices(), &root.join("class/powercap/intel-rapl"))?;
        Ok(t)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn devices(&self) -> PathBuf {
        self.root.join("devices/virtual/powercap/intel-rapl")
    }

    /// The real directory of zone `id` (`"0"` for a package, `"0:1"` for a subzone).
    pub fn zone_dir(&self, id: &str) -> PathBuf {
        match id.split_once(':') {
            None => self.devices().join(format!("intel-rapl:{id}")),
            Some((pkg, _)) => self
                .devices()
                .join(format!("intel-rapl:{pkg}"))
                .join(format!("intel-rapl:{id}")),
        }
    }

    /// Add zone `id` named `name` (`package-0`, `core`, `dram`, `psys`...), counter at
    /// `start_uj`, wrapping at `range_uj`, with an optional `constraint_0_max_power_uw`.
    /// Subzones get both the nested directory and the flat symlink, as on real machines.
    pub fn add_zone(
        &self,
        id: &str,
        name: &str,
        start_uj: u64,
        range_uj: u64,
        max_power_uw: Option<u64>,
    ) -> io::Result<()> {
        let dir = self.zone_dir(id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("name"), format!("{name}\n"))?;
        std::fs::write(dir.join("max_energy_range_uj"), format!("{range_uj}\n"))?;
        if let Some(p) = max_power_uw {
            std::fs::write(dir.join("constraint_0_max_power_uw"), format!("{p}\n"))?;
            std::fs::write(dir.join("constraint_0_name"), "long_term\n")?;
        }
        std::fs::write(dir.join("energy_uj"), fixed(start_uj))?;
        symlink_if_absent(
            &dir,
            &self.root.join(format!("class/powercap/intel-rapl:{id}")),
        )
    }

    /// Overwrite zone `id`'s counter in place.
    pub fn set_energy_uj(&self, id: &str, uj: u64) -> io::Result<()> {
        self.write_raw(id, fixed(uj).as_bytes())
    }

    /// Overwrite zone `id`'s `energy_uj` with arbitrary bytes (garbage tests), in place.
    pub fn write_raw(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.zone_dir(id).join("energy_uj"))?;
        f.write_all_at(bytes, 0)?;
        f.set_len(bytes.len() as u64)
    }

    /// Remove zone `id`'s `energy_uj` (a zone vanishing mid-run).
    pub fn remove_energy(&self, id: &str) -> io::Result<()> {
        std::fs::remove_file(self.zone_dir(id).join("energy_uj"))
    }
}

/// Fixed-width decimal (21 characters with the newline) so in-place rewrites never shrink.
fn fixed(uj: u64) -> String {
    format!("{uj:020}\n")
}

fn symlink_if_absent(target: &Path, link: &Path) -> io::Result<()> {
    if link.symlink_metadata().is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(target, link)
}

/// Write the DMI strings of a (virtual) machine under the sysfs tree `root`
/// (`class/dmi/id/{sys_vendor,product_name,bios_vendor}`), as the kernel does: one line each.
pub fn write_fake_dmi(
    root: &Path,
    sys_vendor: &str,
    product_name: &str,
    bios_vendor: &str,
) -> io::Result<()> {
    let dir = root.join("class/dmi/id");
    std::fs::create_dir_all(&dir)?;
    for (f, v) in [
        ("sys_vendor", sys_vendor),
        ("product_name", product_name),
        ("bios_vendor", bios_vendor),
    ] {
        std::fs::write(dir.join(f), format!("{v}\n"))?;
    }
    Ok(())
}

/// Write a minimal procfs tree (`stat`, `cpuinfo`, `meminfo`) under `root`.
pub fn write_fake_procfs(
    root: &Path,
    model_name: &str,
    threads: u32,
    mem_total_kb: u64,
    busy_ticks: u64,
    idle_ticks: u64,
) -> io::Result<()> {
    std::fs::create_dir_all(root)?;
    let mut cpuinfo = String::new();
    for i in 0..threads {
        cpuinfo.push_str(&format!(
            "processor\t: {i}\nmodel name\t: {model_name}\nphysical id\t: 0\n\n"
        ));
    }
    std::fs::write(root.join("cpuinfo"), cpuinfo)?;
    std::fs::write(
        root.join("meminfo"),
        format!("MemTotal:       {mem_total_kb} kB\n"),
    )?;
    set_fake_stat(root, busy_ticks, idle_ticks)
}

/// Overwrite a fake `/proc/stat` with the given aggregate ticks (all busy time as `user`).
pub fn set_fake_stat(root: &Path, busy_ticks: u64, idle_ticks: u64) -> io::Result<()> {
    let text = format!("cpu  {busy_ticks:020} 0 0 {idle_ticks:020} 0 0 0 0 0 0\n");
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.join("stat"))?;
    f.write_all_at(text.as_bytes(), 0)?;
    f.set_len(text.len() as u64)
}

/// A fake perf `power` PMU under `<root>/bus/event_source/devices/power`, with its counters
/// as files under `<root>/perf-counters` (pass [`FakePerfPmu::counters_dir`] as
/// `WATTPRINT_PERF_COUNTERS_DIR`). A count that is never rewritten is a dead counter.
#[derive(Clone, Debug)]
pub struct FakePerfPmu {
    root: PathBuf,
}

impl FakePerfPmu {
    /// A PMU of type 23 on `cpus` (one per socket) offering `events` (`pkg`, `ram`, `cores`,
    /// `gpu`, `psys`), each at the Intel scale of 2^-32 J per count, every count at zero.
    pub fn new(root: &Path, cpus: &[i32], events: &[&str]) -> io::Result<FakePerfPmu> {
        let dir = root.join("bus/event_source/devices/power");
        std::fs::create_dir_all(dir.join("events"))?;
        std::fs::write(dir.join("type"), "23\n")?;
        let list: Vec<String> = cpus.iter().map(i32::to_string).collect();
        std::fs::write(dir.join("cpumask"), format!("{}\n", list.join(",")))?;
        let p = FakePerfPmu {
            root: root.to_path_buf(),
        };
        std::fs::create_dir_all(p.counters_dir())?;
        for (k, ev) in events.iter().enumerate() {
            std::fs::write(
                dir.join(format!("events/energy-{ev}")),
                format!("event=0x{:02x}\n", k + 1),
            )?;
            std::fs::write(
                dir.join(format!("events/energy-{ev}.scale")),
                "2.3283064365386962890625e-10\n",
            )?;
            for cpu in cpus {
                p.set_count(ev, *cpu, 0)?;
            }
        }
        Ok(p)
    }

    /// The directory holding the counter files.
    pub fn counters_dir(&self) -> PathBuf {
        self.root.join("perf-counters")
    }

    /// Set `event`'s raw count on `cpu` (2^32 counts = 1 J).
    pub fn set_count(&self, event: &str, cpu: i32, count: u64) -> io::Result<()> {
        let path = self
            .counters_dir()
            .join(crate::perf_rapl::counter_file_name(event, cpu));
        let text = format!("{count:020}\n");
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        f.write_all_at(text.as_bytes(), 0)?;
        f.set_len(text.len() as u64)
    }

    /// Make `event` on `cpu` refuse to open with EACCES (as `perf_event_paranoid` would).
    pub fn deny(&self, event: &str, cpu: i32) -> io::Result<()> {
        std::fs::write(
            self.counters_dir()
                .join(crate::perf_rapl::counter_file_name(event, cpu)),
            "EACCES\n",
        )
    }
}
