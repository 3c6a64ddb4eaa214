"""``num_workers: auto`` / ``use_shared_memory: auto``: what each device gets (GPU values checked
without a GPU, as pure functions of device, cores and ranks)."""

import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.errors import ConfigError
from paddle_dx.utils.loader_workers import MAX_GPU_WORKERS, resolve_shared_memory, resolve_workers

BATCH = 4 * 16 * 3 * 224 * 224  # bytes of a float32 batch of 16 images at 224 px


@pytest.mark.parametrize(
    "device,cores,world_size,expected",
    [
        ("cpu", 2, 1, 0),  # workers only compete with the training threads (loader_workers.md)
        ("cpu", 64, 1, 0),
        ("gpu:0", 2, 1, 1),  # one core left beside the rank's own process
        ("gpu:1", 4, 1, 3),
        ("gpu:0", 32, 1, MAX_GPU_WORKERS),
        ("gpu:0", 16, 4, 3),  # cores shared by 4 ranks
        ("gpu:0", 2, 4, 1),  # never fewer than one on GPU
    ],
)
def test_auto_workers_by_device_cores_and_ranks(device, cores, world_size, expected):
    assert resolve_workers("auto", device, cores, world_size) == expected


def test_a_number_of_workers_is_kept_as_given():
    assert [resolve_workers(n, d, 2) for n in (0, 3) for d in ("cpu", "gpu:0")] == [0, 0, 3, 3]


def test_shared_memory_auto_needs_room_for_the_batches_in_flight():
    assert resolve_shared_memory("auto", 4, BATCH, 24 * 2**30) is True
    assert resolve_shared_memory("auto", 4, BATCH, 64 * 2**20) is False  # a container's default /dev/shm
    assert resolve_shared_memory("auto", 1, BATCH, None) is False  # no /dev/shm
    assert resolve_shared_memory("auto", 0, BATCH, 24 * 2**30) is False  # no workers: nothing to hand over


def test_shared_memory_given_is_kept_when_there_are_workers():
    assert (resolve_shared_memory(True, 2, BATCH, 0), resolve_shared_memory(False, 2, BATCH, 2**40)) == (True, False)
    assert resolve_shared_memory(True, 0, BATCH, 2**40) is False


@pytest.mark.parametrize("value", ["lots", -1, True, 1.5])
def test_a_bad_num_workers_is_refused_naming_the_key(tmp_path, value):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    with pytest.raises(ConfigError, match=r"DataLoader\.Train\.loader\.num_workers") as error:
        tiny_config(images, lists, tmp_path / "out", **{"DataLoader.Train.loader.num_workers": value})
    assert "\n" not in str(error.value)


def test_the_loader_built_on_cpu_resolves_auto_to_the_main_process(tmp_path):
    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import build_dataset, build_loader
    from paddle_dx.utils.device import select_device

    select_device("cpu")
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{"DataLoader.Train.loader.num_workers": "auto", "DataLoader.Train.loader.use_shared_memory": "auto"},
    )
    loader, _ = build_loader(DataSection.of(config, "Train"), build_dataset(DataSection.of(config, "Train"))[0])
    assert (loader.num_workers, loader.use_shared_memory) == (0, False)
