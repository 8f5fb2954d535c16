# Two entry points, each of which sets up everything it needs on a fresh machine:
#   make run   - build the environment and the book's MathJax, then build the whole book on the
#                embedded default (ELPV mono and poly, EfficientNet-Lite0; plus every MVTec AD
#                category under $MVTEC_ROOT when it is set): _build/html/index.html
#   make test  - build the environment, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

MATHJAX = book/_mathjax/mathjax/tex-chtml.js
MATHJAX_VERSION = 3.2.2

.PHONY: run test bench book-assets clean-venv screenshots publish verify pdf

# keras-hub for the dinov2-vits14 backbone, without the tensorflow-text it asks for (which brings the whole
# tensorflow beside tensorflow-cpu, about 1 GB, and which the DINOv2 backbone does not use); its other needs
# first: a pip install after it would print an ERROR about the requirement left out
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,book]'
	$(BIN)/python -m pip install --quiet kagglesdk==0.1.28 kagglehub==1.0.2 tokenizers regex rich absl-py
	$(BIN)/python -m pip install --quiet --no-deps keras-hub==0.32.0
	touch $(STAMP)

# `lowdata book` runs on a Dask LocalCluster by default; on a 2-core machine one serial process is faster
# (measured: 21.1 min serial, 26.8 min on 1 local worker), so `make run` is serial unless SCHEDULER is set:
# make run SCHEDULER=local, or SCHEDULER=tcp://HOST:PORT for a cluster
SCHEDULER ?= none

run: $(STAMP) $(MATHJAX)
	$(BIN)/lowdata book --scheduler $(SCHEDULER)

# The tests run in 2 processes (pytest-xdist): 8.6 min instead of 13.1 on 2 cores (measured 2026-12-07); each
# process holds up to 2.5 GB, so more are not the default: make test TEST_WORKERS=4 (or 0 for one process)
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# A reviewer's check, after `make run`: the embedded default's figures against the expected ones (±0.005)
verify: $(STAMP)
	$(BIN)/lowdata verify

# The book as one PDF (optional; TeX Live from Debian's packages), after `make run`: _build/latex/lowdata-book.pdf,
# also put beside the site (book/_extra/ -> _build/html/lowdata-book.pdf) and linked from the index
TEX_PACKAGES = texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended tex-gyre latexmk fonts-freefont-otf
pdf: $(STAMP)
	@test -f _build/html/index.html || { echo "make pdf: no built book in _build/html: run make run first"; exit 2; }
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null || { echo "make pdf: needs TeX Live; on Debian: apt-get install $(TEX_PACKAGES)"; exit 2; }
	$(BIN)/jupyter-book build . --builder pdflatex > _build/pdf.log 2>&1 || { tail -30 _build/pdf.log; echo "make pdf: the LaTeX build failed (whole log: _build/pdf.log)"; exit 1; }
	mkdir -p book/_extra && cp _build/latex/lowdata-book.pdf book/_extra/lowdata-book.pdf.tmp && mv book/_extra/lowdata-book.pdf.tmp book/_extra/lowdata-book.pdf
	$(BIN)/jupyter-book build . > _build/html.log 2>&1 || { tail -30 _build/html.log; exit 1; }
	@echo "PDF: _build/latex/lowdata-book.pdf, linked from _build/html/book/intro.html"

# The built book for readers who do not build it (after `make run`): _build/publish/lowdata-book-<version>.zip
# (the site; opens from disk or any static server, MathJax inside), every table as CSV (tables/ and its zip)
publish: $(STAMP)
	$(BIN)/lowdata publish

bench: $(STAMP)
	$(BIN)/python benchmarks/embed.py

# MathJax 3 for the book's formulas, from the npm registry (Jupyter Book 1.x would load it from a CDN,
# which fails offline): tex-chtml.js and its fonts, in book/_mathjax/ (git-ignored)
book-assets: $(MATHJAX)

$(MATHJAX):
	rm -rf book/_mathjax.tmp && mkdir -p book/_mathjax.tmp
	cd book/_mathjax.tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar -xzf mathjax-$(MATHJAX_VERSION).tgz
	mkdir -p book/_mathjax.tmp/out/mathjax/output/chtml/fonts
	cp book/_mathjax.tmp/package/es5/tex-chtml.js book/_mathjax.tmp/out/mathjax/
	cp -r book/_mathjax.tmp/package/es5/output/chtml/fonts/woff-v2 book/_mathjax.tmp/out/mathjax/output/chtml/fonts/
	rm -rf book/_mathjax && mv book/_mathjax.tmp/out book/_mathjax && rm -rf book/_mathjax.tmp

clean-venv:
	rm -rf $(VENV)

# Full-page PNGs of the built book (_build/html -> _build/screenshots) in headless Chromium, and a
# check of what a reader sees: title, images loaded, tables, MathJax; any console error fails it. Debian's
# chromium is installed when missing. Some pages only: make screenshots PAGES="book/methods.html"
screenshots: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y chromium chromium-driver)
	$(BIN)/python scripts/book_screenshots.py --strict $(PAGES)
