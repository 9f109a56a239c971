"""What system:prune keeps (GC roots) and what system:df reports, on in-memory inventories."""

from __future__ import annotations

from dataclasses import replace

from paas.deploy.df import usage_rows
from paas.deploy.gc import Policy, plan, prunable_containers, stale_nginx_logs
from paas.deploy.inventory import AppReleases, Inventory, SnapshotInfo
from paas.image.prune import ImageNode
from paas.model import Container, ContainerConfig, ContainerState

NOW = 1_000_000.0
OLD = NOW - 86400

STACK = ImageNode("m-stack", "c-stack", ("l-stack",), ("ch-stack",), ("paas/stack:bookworm",),
                  OLD)
DEBIAN = ImageNode("m-deb", "c-deb", ("l-deb",), ("ch-deb",), ("debian:bookworm",), OLD)
TOOLS = ImageNode("m-tools", "c-tools", ("l-deb", "l-tools"), ("ch-deb", "ch-tools"),
                  ("tools:1",), OLD)


def release(v: int, *, tags: bool = True, added: float = OLD) -> ImageNode:
    return ImageNode(f"m-v{v}", f"c-v{v}", ("l-stack", f"l-v{v}"), ("ch-stack", f"ch-v{v}"),
                     (f"paas-apps/web:v{v}",) if tags else (), added)


def container(name: str, image: str, state: str = ContainerState.EXITED, *,
              restart: str = "no", exit_code: int = 0, created: float = OLD,
              stopped_by_user: bool = False) -> Container:
    return Container(id=name.replace(".", "-") * 2, name=name,
                     config=ContainerConfig(image="x", image_id=image, args=(), restart=restart),
                     state=state, created=created, exit_code=exit_code,
                     stopped_by_user=stopped_by_user)


def inventory(images: list[ImageNode], containers: list[Container] = (),  # type: ignore[assignment]
              versions: tuple[tuple[int, str], ...] = (), keep: int = 2,
              cache: dict[str, float] | None = None,
              buildpack: dict[str, tuple[float, int]] | None = None,
              blobs: dict[str, int] | None = None) -> Inventory:
    all_blobs = {b for n in images for b in n.blobs}
    sizes = blobs or {b: 1000 for b in all_blobs}
    return Inventory(
        images=tuple(images), cache=cache or {}, containers=tuple(containers),
        apps=(AppReleases("web", versions, keep),) if versions else (),
        blobs=sizes, blob_mtimes={b: OLD for b in sizes},
        snapshots=tuple(SnapshotInfo(i, ch, "host", 500) for i, ch in
                        enumerate(sorted({c for n in images for c in n.chains}))),
        staging=0, buildpack_caches=buildpack or {}, build_logs={},
        container_sizes={c.id: 100 for c in containers},
        container_logs={c.id: 10 for c in containers},
        nginx_logs={"web-access.log": 5, "gone-access.log": 7, "error.log": 1})


V = ((4, "c-v4"), (3, "c-v3"), (2, "c-v2"), (1, "c-v1"))


def test_kept_releases_stay_and_expired_ones_go_with_their_layers() -> None:
    inv = inventory([STACK, DEBIAN, *(release(v) for v in (1, 2, 3, 4))], versions=V)
    p = plan(inv, Policy(now=NOW))
    assert set(p.images.remove) == {"m-v1", "m-v2"}
    assert p.images.freed_blobs == {"m-v1", "c-v1", "l-v1", "m-v2", "c-v2", "l-v2"}
    removed_chains = {s.chain for s in inv.snapshots if s.id in p.snapshots}
    assert removed_chains == {"ch-v1", "ch-v2"}
    assert p.untag == ()


def test_an_expired_release_a_container_uses_is_untagged_but_kept() -> None:
    oneoff = container("web.run.1.v1", "c-v1", ContainerState.RUNNING)
    inv = inventory([STACK, *(release(v) for v in (1, 2, 3))], [oneoff],
                    versions=V[1:])
    p = plan(inv, Policy(now=NOW))
    assert p.images.remove == ()
    assert p.untag == ("paas-apps/web:v1",)
    assert "ch-v1" in p.images.kept_chains


def test_rolled_back_release_keeps_the_old_image_it_points_at() -> None:
    # v5 is a rollback to v1's image: v1's image is a kept release's image
    inv = inventory([STACK, *(release(v) for v in (1, 2, 3, 4))],
                    versions=((5, "c-v1"), *V), keep=2)
    p = plan(inv, Policy(now=NOW))
    assert set(p.images.remove) == {"m-v2", "m-v3"}
    assert p.untag == ("paas-apps/web:v1",)  # v1's own tag: release 1 is not kept


def test_tagged_images_stay_unless_all_and_the_stack_always() -> None:
    dangling = ImageNode("m-dang", "c-dang", ("l-deb", "l-x"), ("ch-deb", "ch-x"), (), OLD)
    inv = inventory([STACK, DEBIAN, TOOLS, dangling])
    assert plan(inv, Policy(now=NOW)).images.remove == ("m-dang",)
    p = plan(inv, Policy(all=True, now=NOW))
    assert set(p.images.remove) == {"m-dang", "m-deb", "m-tools"}
    # with tools kept by a container, debian (its layers are tools' own) stays too
    inv = inventory([STACK, DEBIAN, TOOLS, dangling], [container("c1", "c-tools",
                                                                 ContainerState.RUNNING)])
    assert set(plan(inv, Policy(all=True, now=NOW)).images.remove) == {"m-dang"}


def test_recent_untagged_images_stay_a_build_may_not_have_tagged_them_yet() -> None:
    fresh = release(9, tags=False, added=NOW - 5)
    inv = inventory([STACK, fresh])
    assert plan(inv, Policy(now=NOW)).images.remove == ()
    assert plan(inv, Policy(now=NOW, grace=0)).images.remove == ("m-v9",)


def test_build_cache_over_its_cap_goes_oldest_first() -> None:
    step1 = ImageNode("m-s1", "c-s1", ("l-deb", "l-s1"), ("ch-deb", "ch-s1"), (), OLD)
    step2 = ImageNode("m-s2", "c-s2", ("l-deb", "l-s1", "l-s2"), ("ch-deb", "ch-s1", "ch-s2"),
                      (), OLD)
    inv = inventory([DEBIAN, step1, step2], cache={"m-s1": OLD, "m-s2": OLD + 10},
                    buildpack={"web": (OLD + 5, 4000), "gone": (OLD + 20, 1)},
                    versions=V[:1])
    # s2, the newest, accounts for m-s2, c-s2, l-s2 and the l-s1 it shares (4000), s1 for
    # m-s1, c-s1 (2000); the buildpack dirs for 4000 and 1
    assert plan(inv, Policy(now=NOW, build_cache_max=10_001)).images.remove == ()
    p = plan(inv, Policy(now=NOW, build_cache_max=8001))
    assert p.images.remove == ("m-s1",)
    assert p.buildpack_caches == ("gone",)  # its app does not exist
    p = plan(inv, Policy(now=NOW, build_cache_max=2000))
    assert set(p.images.remove) == {"m-s1", "m-s2"} and p.buildpack_caches == ("gone", "web")
    p = plan(inv, Policy(now=NOW, build_cache_max=0, busy_apps=frozenset({"web"})))
    assert p.buildpack_caches == ("gone",)  # web is deploying: its cache is in use


def test_containers_paasd_restarts_or_an_app_runs_now_are_not_pruned() -> None:
    keep = [
        container("run", "c", ContainerState.RUNNING),
        container("restarting", "c", ContainerState.RESTARTING),
        container("always", "c", restart="always"),
        container("onfail", "c", restart="on-failure:3", exit_code=1),
        container("web.web.1.v4", "c-v4", exit_code=137),  # the current release's
        container("starting", "c", ContainerState.CREATED, created=NOW - 5),
    ]
    gone = [
        container("done", "c"),
        container("stopped-always", "c", restart="always", stopped_by_user=True),
        container("onfail-ok", "c", restart="on-failure", exit_code=0),
        container("web.web.1.v3", "c-v3", exit_code=0),
        container("stale-created", "c", ContainerState.CREATED),
    ]
    out = prunable_containers([*keep, *gone], {"web": 4}, Policy(now=NOW))
    assert [c.name for c in out] == [c.name for c in gone]
    inv = inventory([STACK], [*keep, *gone])
    assert plan(inv, Policy(now=NOW, containers=False)).containers == ()


def test_stale_nginx_logs() -> None:
    names = ["web-access.log", "web-error.log.1", "gone-access.log", "gone-error.log.2.gz",
             "error.log", "access.log"]
    assert stale_nginx_logs(names, {"web"}) == ["gone-access.log", "gone-error.log.2.gz"]


def test_df_rows_split_images_layers_containers_cache_and_logs() -> None:
    step = ImageNode("m-s1", "c-s1", ("l-deb", "l-s1"), ("ch-deb", "ch-s1"), (), OLD)
    cs = [container("web.web.1.v2", "c-v2", ContainerState.RUNNING), container("done", "c-deb")]
    inv = inventory([STACK, DEBIAN, release(1), release(2), step], cs, versions=V[2:], keep=1,
                    cache={"m-s1": OLD}, buildpack={"web": (OLD, 4000)})
    rows = {r.type: r for r in usage_rows(inv, plan(inv, Policy(all=True, now=NOW)))}
    assert (rows["Images"].total, rows["Images"].active) == (4, 2)
    # every blob of the non-cache images once: 4 images x 2 + 3 layers (stack, deb, v1, v2)
    assert rows["Images"].size == 1000 * (4 * 2 + 4)
    # v1, and debian: its only container is stopped (pruned) and no kept image has its
    # layer (the build step that has it goes with --all); the stack stays
    assert rows["Images"].reclaimable == 6000
    assert (rows["Layers"].total, rows["Layers"].active) == (5, 2)
    assert rows["Layers"].reclaimable == 500 * 3  # ch-v1, ch-deb, ch-s1
    assert (rows["Containers"].total, rows["Containers"].active,
            rows["Containers"].size, rows["Containers"].reclaimable) == (2, 1, 200, 100)
    assert rows["Build cache"].size == 3000 + 4000 and rows["Build cache"].reclaimable == 7000
    assert rows["Logs"].size == 20 + 13 and rows["Logs"].reclaimable == 10 + 7
    assert replace(rows["Logs"], size=0).type == "Logs"


def test_the_tag_of_a_deploy_in_progress_stays() -> None:
    """v5 is tagged but not live yet (its cutover runs): neither untagged nor removed,
    even once its image is older than the grace period."""
    inv = inventory([STACK, *(release(v) for v in (1, 2, 3, 4, 5))], versions=V)
    p = plan(inv, Policy(now=NOW, grace=0))
    assert "m-v5" not in p.images.remove and "paas-apps/web:v5" not in p.untag
    assert set(p.images.remove) == {"m-v1", "m-v2"}
