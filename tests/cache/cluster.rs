//! The cache on a Redis Cluster (three primaries started by the test, and a replica of each for
//! the failover), shared by two Roster instances serving one database: keys spread over the
//! nodes, the keys of one lookup share a slot, every change is honoured by both instances, a
//! node killed mid-load turns its keys' lookups into misses, never into wrong answers, and so
//! does a primary until its replica has taken over.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use roster::cache::keys;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    cluster_url, free_ports, spawn_app_with, spawn_instance_of, wait_for, AppOptions, RedisCluster,
    Reply, TestApp, TestUser, CLUSTER_NODES, INVALIDATION_DEADLINE,
};

fn cluster_options(cluster: &RedisCluster) -> AppOptions {
    AppOptions {
        redis_url: Some(cluster.url()),
        redis_cluster: true,
        ..AppOptions::default()
    }
}

/// Instance A, with a fresh database, and instance B of the same deployment.
async fn two_instances(cluster: &RedisCluster) -> (TestApp, TestApp) {
    let a = spawn_app_with(cluster_options(cluster)).await;
    let b = spawn_instance_of(&a, cluster_options(cluster)).await;
    (a, b)
}

/// The key as the app names it in Redis.
fn full(app: &TestApp, key: roster::cache::Key) -> String {
    format!("{}:{}", app.namespace, key.name)
}

fn name(reply: &Reply) -> Option<String> {
    (reply.status == 200).then(|| reply.json()["name"].as_str().unwrap_or("").to_owned())
}

fn allowed(reply: &Reply) -> Vec<Value> {
    assert_eq!(200, reply.status, "{reply:?}");
    reply.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| result["allowed"].clone())
        .collect()
}

/// Answers a test waits for: the organization's name, a status, a check's verdict.
fn named(expected: &str) -> impl Fn(&Reply) -> bool + '_ {
    move |reply| name(reply).as_deref() == Some(expected)
}

fn status(expected: u16) -> impl Fn(&Reply) -> bool {
    move |reply| reply.status == expected
}

fn may_read(expected: bool) -> impl Fn(&Reply) -> bool {
    move |reply| reply.status == 200 && allowed(reply) == vec![json!(expected)]
}

/// A request a test repeats on each instance.
#[derive(Clone, Copy)]
enum Probe<'a> {
    /// `GET /organizations/{id}`.
    Get(&'a TestUser, Uuid),
    /// `POST /authz/check` of `organization:read`.
    Check(&'a TestUser, Uuid),
}

impl Probe<'_> {
    async fn send(self, app: &TestApp) -> Reply {
        match self {
            Probe::Get(user, org) => app.get_org(&user.token, org).await,
            Probe::Check(user, org) => app.check(&user.token, &[(org, "organization:read")]).await,
        }
    }
}

/// Asserts `probe` answers `expected` on `app`, the second time with no database round trip.
async fn warm(app: &TestApp, what: &str, probe: Probe<'_>, expected: impl Fn(&Reply) -> bool) {
    let cold = probe.send(app).await;
    assert!(expected(&cold), "{what} at {}: {cold:?}", app.address);
    let (reply, trips) = app.counted(probe.send(app)).await;
    assert!(
        expected(&reply),
        "{what} at {}, cached: {reply:?}",
        app.address
    );
    assert_eq!(
        0, trips,
        "{what} at {}: served from the cluster",
        app.address
    );
}

/// Ends `user`'s membership of `org` by raw SQL, as a DBA or another service would.
async fn remove_by_raw_sql(app: &TestApp, org: Uuid, user: &TestUser) {
    app.exec(
        "update roster.organization_memberships set deleted_at = now() \
         where organization_id = $1 and user_id = $2",
        &[&org, &user.id],
    )
    .await;
}

/// `user`'s GET of `org` and check of `organization:read` (allowed), cached on both instances.
async fn warm_both(apps: [&TestApp; 2], what: &str, user: &TestUser, org: Uuid) {
    for app in apps {
        warm(app, what, Probe::Get(user, org), |reply| {
            name(reply).is_some()
        })
        .await;
        let allowed_once = |reply: &Reply| reply.status == 200 && allowed(reply) == [json!(true)];
        warm(app, what, Probe::Check(user, org), allowed_once).await;
    }
}

/// Polls `probe` on every instance until each answers as `expected`, within the deadline.
async fn honoured_by_both(
    apps: [&TestApp; 2],
    what: &str,
    probe: Probe<'_>,
    expected: impl Fn(&Reply) -> bool,
) {
    let changed = Instant::now();
    for app in apps {
        let description = format!("{what} at {}", app.address);
        wait_for(&description, INVALIDATION_DEADLINE, || async {
            let reply = probe.send(app).await;
            assert!(reply.status < 500, "{description}: {reply:?}");
            expected(&reply).then_some(())
        })
        .await;
    }
    println!(
        "cluster: {what}: honoured by both in {:?}",
        changed.elapsed()
    );
}

/// Polls until `probe`, asked twice, answers as `expected` the second time with no database
/// round trip: `what` serves the cache (again).
async fn served_from_the_cache_again(
    app: &TestApp,
    what: &str,
    probe: Probe<'_>,
    expected: impl Fn(&Reply) -> bool,
) {
    let description = format!("{what} to serve the cache at {}", app.address);
    wait_for(&description, Duration::from_secs(5), || async {
        probe.send(app).await;
        let (reply, trips) = app.counted(probe.send(app)).await;
        assert!(expected(&reply), "{description}: {reply:?}");
        (trips == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_the_nodes_and_warm_reads_come_from_the_cluster() {
    let cluster = RedisCluster::start().await;
    let app = spawn_app_with(cluster_options(&cluster)).await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let mut orgs = Vec::new();
    for i in 0..6 {
        let slug = format!("spread-{i}");
        let org = app.org(&owner, &slug).await;
        app.add(&owner, org, &member, "member").await;
        orgs.push((org, format!("Org {slug}")));
    }

    for (org, expected) in &orgs {
        let is_it = |reply: &Reply| name(reply).as_deref() == Some(expected.as_str());
        warm(
            &app,
            "the member's GET org",
            Probe::Get(&member, *org),
            is_it,
        )
        .await;
        // One lookup's keys, on one node.
        let access = full(&app, keys::access(app.tenant, *org, member.id));
        let body = full(&app, keys::organization(app.tenant, *org));
        assert_eq!(cluster.node_of(&access).await, cluster.node_of(&body).await);
    }

    // One check over every organization: keys in several slots, one answer.
    let mut checks: Vec<(Uuid, &str)> = orgs
        .iter()
        .map(|(org, _)| (*org, "organization:read"))
        .collect();
    checks.extend(orgs.iter().map(|(org, _)| (*org, "organization:delete")));
    let mut expected = vec![json!(true); orgs.len()];
    expected.extend(vec![json!(false); orgs.len()]);
    let reply = app.check(&member.token, &checks).await;
    assert_eq!(expected, allowed(&reply), "cold batch check");
    let (reply, trips) = app.counted(app.check(&member.token, &checks)).await;
    assert_eq!(expected, allowed(&reply), "warm batch check");
    assert_eq!(
        0, trips,
        "a warm batch check over several slots comes from the cluster"
    );
    let (reply, trips) = app.counted(app.check(&owner.token, &checks)).await;
    assert!(trips >= 1, "the owner's accesses are not cached yet");
    assert_eq!(
        vec![json!(true); 2 * orgs.len()],
        allowed(&reply),
        "the owner's batch"
    );

    let sizes = cluster.sizes().await;
    println!("cluster: keys per node after traffic: {sizes:?}");
    let holding = sizes.iter().filter(|size| size.unwrap_or(0) > 0).count();
    assert!(holding >= 2, "entries spread over the nodes: {sizes:?}");
    assert_eq!("ok", app.cache_state().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_honour_a_change_from_any_door() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_instances(&cluster).await;
    let both = [&a, &b];
    let owner = a.user("owner").await;
    let member = a.user("member").await;
    let by_function = a.user("leaves-by-function").await;
    let by_sql = a.user("leaves-by-sql").await;
    let org = a.org(&owner, "shared").await;
    for user in [&member, &by_function, &by_sql] {
        a.add(&owner, org, user, "member").await;
    }
    // Through instance A's API.
    warm_both(both, "before the API rename", &member, org).await;
    let reply = a
        .patch_org(&owner.token, org, &json!({"name": "Renamed by API"}))
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    honoured_by_both(
        both,
        "PATCH org on A -> GET org",
        Probe::Get(&member, org),
        named("Renamed by API"),
    )
    .await;

    // A roster.* function in psql.
    warm_both(both, "before remove_member", &by_function, org).await;
    a.exec(
        "select roster.remove_member($1, $2, $3)",
        &[&owner.id, &org, &by_function.id],
    )
    .await;
    honoured_by_both(
        both,
        "roster.remove_member -> GET org",
        Probe::Get(&by_function, org),
        status(404),
    )
    .await;
    honoured_by_both(
        both,
        "roster.remove_member -> check",
        Probe::Check(&by_function, org),
        may_read(false),
    )
    .await;

    // Raw SQL on the organization.
    warm_both(both, "before the raw rename", &member, org).await;
    a.exec(
        "update roster.organizations set name = 'Renamed by SQL' where id = $1",
        &[&org],
    )
    .await;
    honoured_by_both(
        both,
        "update organizations -> GET org",
        Probe::Get(&member, org),
        named("Renamed by SQL"),
    )
    .await;

    // Raw SQL on a membership: the removed member loses access on both.
    warm_both(both, "before the raw removal", &by_sql, org).await;
    remove_by_raw_sql(&a, org, &by_sql).await;
    honoured_by_both(
        both,
        "update memberships deleted_at -> GET org",
        Probe::Get(&by_sql, org),
        status(404),
    )
    .await;
    honoured_by_both(
        both,
        "update memberships deleted_at -> check",
        Probe::Check(&by_sql, org),
        may_read(false),
    )
    .await;
    // The others keep theirs.
    honoured_by_both(
        both,
        "the member still reads",
        Probe::Get(&member, org),
        named("Renamed by SQL"),
    )
    .await;
}

/// What must hold for every answer during the load: the database's state, which does not
/// change while the load runs.
struct Truth {
    member: TestUser,
    leaver: TestUser,
    outsider: TestUser,
    orgs: Vec<(Uuid, String)>,
}

impl Truth {
    /// One request of the mix (by `round`), its answer compared with the truth.
    async fn request(&self, app: &TestApp, round: usize) {
        let (org, expected) = &self.orgs[round % self.orgs.len()];
        let what = format!("request {round} at {}", app.address);
        let reply = match round % 5 {
            0 | 1 => {
                let reply = app.get_org(&self.member.token, *org).await;
                assert_eq!(
                    Some(expected.clone()),
                    name(&reply),
                    "{what}: member: {reply:?}"
                );
                reply
            }
            2 => {
                let reply = app.get_org(&self.leaver.token, *org).await;
                assert_eq!(404, reply.status, "{what}: removed member: {reply:?}");
                reply
            }
            3 => {
                let reply = app.get_org(&self.outsider.token, *org).await;
                assert_eq!(404, reply.status, "{what}: outsider: {reply:?}");
                reply
            }
            _ => {
                let checks: Vec<(Uuid, &str)> = self
                    .orgs
                    .iter()
                    .map(|(org, _)| (*org, "organization:read"))
                    .collect();
                let reply = app.check(&self.member.token, &checks).await;
                assert_eq!(
                    vec![json!(true); self.orgs.len()],
                    allowed(&reply),
                    "{what}"
                );
                let reply = app.check(&self.leaver.token, &checks).await;
                assert_eq!(
                    vec![json!(false); self.orgs.len()],
                    allowed(&reply),
                    "{what}"
                );
                reply
            }
        };
        assert!(reply.status < 500, "{what}: {reply:?}");
    }

    /// Requests of the mix, from `first` on, until `load` stops.
    async fn load(&self, app: &TestApp, first: usize, load: &Load) {
        let mut round = first;
        while !load.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            self.request(app, round).await;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            load.slowest.fetch_max(micros, Ordering::Relaxed);
            load.served.fetch_add(1, Ordering::Relaxed);
            round += 7;
        }
    }
}

/// The mix on both instances, two tasks each, while an outage runs.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    served: AtomicU64,
    slowest: AtomicU64,
}

impl Load {
    /// Runs the mix until `outage` ends.
    async fn during(&self, truth: &Truth, apps: [&TestApp; 2], outage: impl Future<Output = ()>) {
        let outage = async {
            outage.await;
            self.stop.store(true, Ordering::Relaxed);
        };
        let loads = join_all(
            [(apps[0], 0), (apps[0], 3), (apps[1], 1), (apps[1], 4)]
                .map(|(app, first)| truth.load(app, first, self)),
        );
        tokio::join!(outage, loads);
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The slowest request of the mix. One is one or two HTTP requests, each waiting at most
    /// REDIS_TIMEOUT per cache call, so a dead node may cost each at most about a second.
    fn assert_no_request_waited_on_a_dead_node(&self) {
        let slowest = Duration::from_micros(self.slowest.load(Ordering::Relaxed));
        assert!(
            slowest < Duration::from_secs(1),
            "a dead node cost {slowest:?}"
        );
    }
}

/// Two instances and the mix's answers cached on both.
struct Warm {
    a: TestApp,
    b: TestApp,
    owner: TestUser,
    truth: Truth,
    /// The node serving each organization's entry, in `truth.orgs`' order.
    nodes: Vec<usize>,
    /// The node serving the epoch.
    epoch_node: usize,
}

impl Warm {
    /// Organizations until some have their entries on the epoch's node and some on another,
    /// `leaver` removed from each by raw SQL, every answer of the mix cached on both instances.
    async fn start(cluster: &RedisCluster) -> Warm {
        let (a, b) = two_instances(cluster).await;
        let owner = a.user("owner").await;
        let (member, leaver, outsider) = (
            a.user("member").await,
            a.user("leaver").await,
            a.user("outsider").await,
        );
        let epoch_node = cluster.node_of(&format!("{}:epoch", a.namespace)).await;
        let mut orgs = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..40 {
            let slug = format!("load-{i}");
            let org = a.org(&owner, &slug).await;
            for user in [&member, &leaver] {
                a.add(&owner, org, user, "member").await;
            }
            nodes.push(
                cluster
                    .node_of(&full(&a, keys::organization(a.tenant, org)))
                    .await,
            );
            orgs.push((org, format!("Org {slug}")));
            let elsewhere = nodes.iter().filter(|node| **node != epoch_node).count();
            if orgs.len() >= 6 && elsewhere >= 1 && elsewhere < nodes.len() {
                break;
            }
        }
        for (org, _) in &orgs {
            remove_by_raw_sql(&a, *org, &leaver).await;
        }
        let truth = Truth {
            member,
            leaver,
            outsider,
            orgs,
        };
        for app in [&a, &b] {
            wait_for(
                "the removals to reach both",
                INVALIDATION_DEADLINE,
                || async {
                    let reply = app.get_org(&truth.leaver.token, truth.orgs[0].0).await;
                    (reply.status == 404).then_some(())
                },
            )
            .await;
            for round in 0..2 * 5 * truth.orgs.len() {
                truth.request(app, round).await;
            }
            let (_, trips) = app.counted(truth.request(app, 0)).await;
            assert_eq!(0, trips, "warm before the outage");
        }
        Warm {
            a,
            b,
            owner,
            truth,
            nodes,
            epoch_node,
        }
    }

    /// An organization whose entry is on `node`.
    fn org_on(&self, node: usize) -> Uuid {
        self.org_where(|n| n == node)
    }

    /// An organization whose entry is on another node than `node`.
    fn org_off(&self, node: usize) -> Uuid {
        self.org_where(|n| n != node)
    }

    fn org_where(&self, on: impl Fn(usize) -> bool) -> Uuid {
        let index = self.nodes.iter().position(|n| on(*n));
        self.truth.orgs[index.expect("an organization there")].0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_turns_its_keys_into_misses_never_wrong_answers() {
    killed_mid_load(false).await;
}

/// The epoch's node holds no entry of the answers below, but without the epoch no entry can be
/// validated: every lookup misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epochs_node_killed_mid_load_turns_every_lookup_into_a_miss() {
    killed_mid_load(true).await;
}

/// Two instances under load while a node is killed: the epoch's node, or one that holds
/// entries but not the epoch.
async fn killed_mid_load(kill_the_epochs_node: bool) {
    let mut cluster = RedisCluster::start().await;
    let warm = Warm::start(&cluster).await;
    let (a, b, truth) = (&warm.a, &warm.b, &warm.truth);
    let victim = match kill_the_epochs_node {
        true => warm.epoch_node,
        false => *warm
            .nodes
            .iter()
            .find(|node| **node != warm.epoch_node)
            .expect("a victim node"),
    };
    let on_victim = warm.org_on(victim);
    let survivor = warm.org_off(victim);

    let load = Load::default();
    let killed_at = std::sync::Mutex::new(None);
    let started = Instant::now();
    load.during(truth, [a, b], async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.kill(victim);
        *killed_at.lock().unwrap() = Some((Instant::now(), load.served()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    })
    .await;
    let (killed, before_kill) = killed_at.lock().unwrap().expect("the node was killed");
    let total = load.served();
    println!(
        "cluster: {total} requests correct under load ({before_kill} before node {victim} was killed, {} in the {:?} after; {:?} in all)",
        total - before_kill,
        killed.elapsed(),
        started.elapsed()
    );
    load.assert_no_request_waited_on_a_dead_node();
    assert!(total - before_kill >= 20, "the load went on after the kill");

    for app in [a, b] {
        app.wait_for_cache("degraded", Duration::from_secs(2)).await;
        // The dead node's keys miss (twice: the fill cannot be written either).
        for _ in 0..2 {
            let (reply, trips) = app
                .counted(app.get_org(&truth.member.token, on_victim))
                .await;
            assert_eq!(200, reply.status, "{reply:?}");
            assert!(
                trips >= 1,
                "a key on the dead node is a miss at {}",
                app.address
            );
        }
        // The live nodes still serve theirs, unless the epoch went with its node.
        let (reply, trips) = app
            .counted(app.get_org(&truth.member.token, survivor))
            .await;
        assert_eq!(200, reply.status, "{reply:?}");
        match kill_the_epochs_node {
            true => assert!(trips >= 1, "no epoch, no hit at {}", app.address),
            false => assert_eq!(
                0, trips,
                "a key on a live node is still a hit at {}",
                app.address
            ),
        }
    }

    // A change while the node is down is honoured by both, on either side of the outage.
    for org in [on_victim, survivor] {
        remove_by_raw_sql(a, org, &truth.member).await;
        let probe = Probe::Get(&truth.member, org);
        honoured_by_both([a, b], "a removal while a node is down", probe, status(404)).await;
    }
}

/// A cluster with a replica per primary, the epoch's primary killed mid-load: its replica takes
/// over within seconds. Until then every lookup misses, and no answer is ever wrong; after it,
/// a removal made while the primary was down is honoured by both instances although the replica
/// holds the removed member's entries from before, and both serve from the cluster again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failed_over_to_its_replica_mid_load_never_gives_a_wrong_answer() {
    let mut cluster = RedisCluster::start_with_replicas().await;
    let warm = Warm::start(&cluster).await;
    let (a, b, truth) = (&warm.a, &warm.b, &warm.truth);
    let victim = warm.epoch_node;
    let replica = cluster.replica_of(victim).await;
    let on_victim = warm.org_on(victim);
    let changer = a.user("removed-during-the-outage").await;
    a.add(&warm.owner, on_victim, &changer, "member").await;
    warm_both([a, b], "before the failover", &changer, on_victim).await;

    let load = Load::default();
    let outage = std::sync::Mutex::new(None);
    load.during(truth, [a, b], async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.kill(victim);
        let killed = Instant::now();
        let before_kill = load.served();
        remove_by_raw_sql(a, on_victim, &changer).await;
        wait_for(
            "the replica to take over its primary's slots",
            Duration::from_secs(20),
            || async {
                cluster
                    .is_primary(replica)
                    .await
                    .unwrap_or(false)
                    .then_some(())
            },
        )
        .await;
        *outage.lock().unwrap() = Some((before_kill, load.served(), killed.elapsed()));
        // The load goes on against the new primary for a while.
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let (before_kill, at_failover, failed_over) = outage.lock().unwrap().expect("the outage ran");
    let total = load.served();
    println!(
        "cluster: {total} requests correct under load: {before_kill} before primary {victim} was killed, {} until its replica {replica} had taken over ({failed_over:?}), {} in the 500 ms after",
        at_failover - before_kill,
        total - at_failover
    );
    load.assert_no_request_waited_on_a_dead_node();
    assert!(total - before_kill >= 20, "the load went on after the kill");

    for app in [a, b] {
        app.wait_for_cache("ok", Duration::from_secs(10)).await;
    }
    honoured_by_both(
        [a, b],
        "a removal while the primary was down -> GET org",
        Probe::Get(&changer, on_victim),
        status(404),
    )
    .await;
    honoured_by_both(
        [a, b],
        "a removal while the primary was down -> check",
        Probe::Check(&changer, on_victim),
        may_read(false),
    )
    .await;
    // The failed-over slots serve the cache again.
    let (_, on_victim_name) = truth
        .orgs
        .iter()
        .find(|(org, _)| *org == on_victim)
        .expect("on_victim is one of the mix's organizations");
    for app in [a, b] {
        let probe = Probe::Get(&truth.member, on_victim);
        served_from_the_cache_again(app, "the new primary", probe, named(on_victim_name)).await;
    }
}

/// A cluster down at start-up: the app starts at once, serves from the database (degraded),
/// and uses the cluster once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_down_at_start_up_costs_misses_until_it_is_up() {
    let ports = free_ports(2 * CLUSTER_NODES);
    let started = Instant::now();
    let app = spawn_app_with(AppOptions {
        redis_url: Some(cluster_url(&ports[..CLUSTER_NODES])),
        redis_cluster: true,
        wait_for_cache: false,
        ..AppOptions::default()
    })
    .await;
    let build = started.elapsed();
    println!("cluster: the app started in {build:?} with the cluster down");
    assert!(
        build < Duration::from_secs(3),
        "start-up waited for the cluster: {build:?}"
    );
    let owner = app.user("owner").await;
    let org = app.org(&owner, "early").await;
    for _ in 0..2 {
        let (reply, trips) = app.counted(app.get_org(&owner.token, org)).await;
        assert_eq!(Some("Org early".to_owned()), name(&reply), "{reply:?}");
        assert!(trips >= 1, "no cluster, no cache");
    }
    assert_eq!("degraded", app.cache_state().await);

    let _cluster = RedisCluster::start_on(ports).await;
    let recovery = app.wait_for_cache("ok", Duration::from_secs(10)).await;
    println!("cluster: cache ok {recovery:?} after the cluster formed");
    served_from_the_cache_again(
        &app,
        "the cluster",
        Probe::Get(&owner, org),
        named("Org early"),
    )
    .await;
}
