# What each job asks of the machine: GPUs and memory (docs/clusters-and-gpus.md).
def training_gpus():
    """GPUs a training job holds (darklens.learning.devices.training_gpus). Local runs share
    GPUs through `--resources gpu=N` (profiles/default declares 1)."""
    return devices.training_gpus(config["training"]["device"])


def training_mem_mb(wildcards, attempt):
    """Memory of a training job, from its own (main or sweep point) config."""
    channels = len(model_spec(wildcards.model)["channels"])
    return devices.training_memory_mb(point_config(wildcards), channels, attempt)


def control_mem_mb(wildcards, attempt):
    """Memory of a control job: the process plus the images (read one class at a time)."""
    n, _, side = devices.training_set_shape(config, 1)
    return int((600 + n * side * side * 4 / 2**20) * attempt)
