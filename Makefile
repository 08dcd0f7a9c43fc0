# resnet-repro. Every target but install uses .venv (make install creates it).
#   make reproduce-fig1 PROFILE=cpu DATA=../shared/data/cifar10-png.tar.gz
PYTHON  := .venv/bin/python
PROFILE ?= paper
# The data set: CIFAR-10 (default: the official release) or ImageNet, as an ImageFolder path.
DATA    ?=
# Extra Hydra overrides for train and analysis alike, e.g. ARGS="seed=1 trainer.devices=2"
ARGS    ?=
# Wall-clock time for the training of a reproduce- target, e.g. BUDGET=150m: it then stops
# cleanly with a checkpoint (exit status 75), and the same command continues it.
BUDGET  ?=
OVERRIDES = profile=$(PROFILE) $(if $(DATA),data.source=$(DATA)) $(ARGS)

# The ImageNet experiments at the smoke profile run on a tiny ImageFolder of generated JPEGs.
TINY_IMAGENET := .cache/tiny-imagenet
ifeq ($(PROFILE),smoke)
reproduce-fig4 reproduce-table3: DATA = $(TINY_IMAGENET)
reproduce-fig4 reproduce-table3: $(TINY_IMAGENET)
endif

$(TINY_IMAGENET):
	$(PYTHON) -m tests.tiny_data $@

.PHONY: install test lint bench verify status reproduce-fig3 reproduce-% gpu-burst gpu-unpack

install:
	python3 -m venv .venv
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'

# Figure 3's comparison: three nets counted (multiply-adds, parameters), nothing trained.
reproduce-fig3:
	$(PYTHON) experiments/figure3.py

# One target per experiment config: reproduce-fig1 runs conf/experiment/fig1.yaml's sweep
# (finished runs are skipped, interrupted ones resume), then writes results/fig1/$(PROFILE)/.
reproduce-%:
	$(PYTHON) experiments/train.py -m experiment=$* $(OVERRIDES) $(if $(BUDGET),time_budget=$(BUDGET))
	$(PYTHON) experiments/analyze.py experiment=$* $(OVERRIDES)

# Each of the paper's CIFAR claims: PASS, FAIL or NOT RUN, from what results/ holds: for every
# profile found, or for the one given (make verify PROFILE=paper).
verify:
	$(PYTHON) experiments/verify.py $(if $(filter command line environment,$(origin PROFILE)),--profile $(PROFILE))

# Where the runs of PROFILE stand (EXP=fig1: that experiment's): iterations, last errors,
# devices, speed and time left on this machine (ARGS="model.depth=20,56" narrows the grid).
status:
	$(PYTHON) experiments/status.py profile=$(PROFILE) $(if $(EXP),experiment=$(EXP)) $(if $(DATA),data.source=$(DATA)) $(ARGS)

# Throughput side by side (bare step, our loop, torchvision's loop, data pipelines alone), and
# the speed settings (fp32/bf16, eager/compiled); BENCH_ARGS="--only settings --seconds 10".
BENCH_ARGS ?=
bench:
	$(PYTHON) experiments/bench.py $(if $(DATA),--data $(DATA)) $(BENCH_ARGS)

# A GPU lease's work, run on the GPU machine (README: "A GPU lease, fired in one command"):
# about a minute of bench, then the unfinished paper runs as fused groups until MINUTES have
# passed, packed into OUT; BURST_ARGS="--bench-seconds 0" skips the bench.
MINUTES    ?= 7
OUT        ?= .lease/out
BURST_ARGS ?=
gpu-burst:
	$(PYTHON) experiments/gpu_burst.py --out $(OUT) --minutes $(MINUTES) $(BURST_ARGS) $(OVERRIDES)

# Back here: the lease's returned files (FROM=folder) into results/runs/<profile>/.
gpu-unpack:
	$(PYTHON) experiments/lease.py unpack $(FROM)

# The tests in parallel processes (pytest-xdist), one file to a process at a time: a file's
# shared fixtures are built once, and tests/test_cluster.py, which mostly waits on SLURM, runs
# beside the others. TEST_WORKERS=0 runs them in this process, one after another.
TEST_WORKERS ?= auto
test:
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint:
	$(PYTHON) -m ruff check src tests experiments hubconf.py
