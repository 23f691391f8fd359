# What every scenario drawn at random by scripts/unseen.sh and scripts/unseen-serverless.py
# shares: one GPU, a 200-sample exemplar memory, the pretrained model, Ekya's configuration
# space and an empty zoo, so that only what each script draws differs.


def common(gflops, seed, profile_epochs, extra=""):
    """The scenario's lines from `gpus` to its `[zoo]`; `gflops` as it is to be written,
    `extra` further sections placed before the zoo's."""
    return f'''gpus = 1
gpu_gflops = {gflops}
seed = {seed}

[profiler]
epochs = {profile_epochs}

[memory]
capacity = 200

[pretrain]
samples = 12000
epochs = 3

[config_space]
name = "ekya-space"
params = {{ wide-width = 0 }}
{extra}
[zoo]
start = "fresh"
'''
