set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -3
mpirecon() { python3 -c 'import sys; from mpirecon.cli.main import main; sys.exit(main())' "$@"; }
nvidia-smi --query-gpu=name --format=csv
time mpirecon train-denoiser -o /tmp/den19.pt --grid 19 19 --samples 20000 --epochs 20 --device cuda --quiet
cp /tmp/den19.pt $OUT/ppmpi_denoiser_19x19.pt
python3 exp_cuda_check.py 2>&1 | grep -v Warning
