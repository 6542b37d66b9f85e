//! Times the phases of a container's life (cgroup + clone, run, teardown) for tuning start time.
use psy_sandbox::cgroup::CgroupLimits;
use psy_sandbox::{ContainerSpec, Sandbox};
use std::fs::File;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::Builder::new()
        .prefix("phases-")
        .tempdir_in(".")
        .unwrap();
    let sandbox = Sandbox::new(&format!("phases{}", std::process::id())).unwrap();
    let limits = CgroupLimits {
        cpu_millis: 1000,
        exclusive_cores: None,
        memory_bytes: 256 << 20,
        pids: 64,
        io: None,
        freezable: false,
    };
    let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
    let gap = std::env::var("GAP_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0u64);
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(gap));
        let scratch = dir.path().join(format!("s{i}"));
        std::fs::create_dir(&scratch).unwrap();
        let spec = ContainerSpec {
            argv: vec!["/bin/true".into()],
            env: vec![],
            cwd: dir.path().into(),
            hostname: "x".into(),
            tmp_bytes: 1 << 20,
            scratch_dir: scratch,
            scratch_bytes: None,
            volumes: Vec::new(),
            project_dir: dir.path().into(),
            stdout: File::create("/dev/null").unwrap(),
            stderr: File::create("/dev/null").unwrap(),
            cgroup_name: format!("p{i}"),
            network: None,
            privileged: false,
            masked: Vec::new(),
            allow: Default::default(),
            writable: Vec::new(),
            readonly: Vec::new(),
            image: None,
            join_netns: None,
            hosts_file: None,
            hold: false,
        };
        let t0 = Instant::now();
        let mut ct = sandbox.spawn(spec, &limits).unwrap();
        let t1 = Instant::now();
        ct.wait_timeout(None).unwrap();
        let t2 = Instant::now();
        let o = ct.finish();
        let t3 = Instant::now();
        assert!(o.setup_error.is_none(), "{:?}", o.setup_error);
        a.push(t1 - t0);
        b.push(t2 - t1);
        c.push(t3 - t2);
    }
    sandbox.close();
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 9 / 10])
    };
    println!(
        "(median, p90) spawn {:?} run {:?} finish {:?}",
        med(&mut a),
        med(&mut b),
        med(&mut c)
    );
}
