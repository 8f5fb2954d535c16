"""The published artefacts: the site as one zip that works offline, every table as CSV, the CI workflow that
runs the README's commands, and the citation file."""

import re
import zipfile

import pytest
import yaml
from conftest import REPO, built_site

from lowdata.book.publish import check_site, publish
from lowdata.cli import main
from lowdata.core.errors import LowdataError


def test_publish_writes_the_site_and_its_tables_and_the_same_book_gives_the_same_archive(tmp_path):
    root = tmp_path / "repo"
    built_site(root)
    done = publish(root)
    with zipfile.ZipFile(done["book"]) as z:
        names = z.namelist()
        assert "lowdata-book/index.html" in names and "lowdata-book/_static/mathjax/tex-chtml.js" in names
        assert "lowdata-book/tables/book/results/sample-size/table-1.csv" in names
        assert not any(".doctrees" in n for n in names)
    index = (root / "_build" / "publish" / "tables" / "index.csv").read_text().splitlines()
    assert index == ["table,page", "book/results/sample-size/table-1.csv,book/results/sample-size.html"]
    with zipfile.ZipFile(done["tables_zip"]) as z:
        assert z.read("tables/book/results/sample-size/table-1.csv") == b"method,auroc\nknn,0.9\n"
    sums = (root / "_build" / "publish" / "SHA256SUMS").read_text()
    import os

    for f in (root / "_build" / "html").rglob("*"):  # the same files written again later: the same archive
        os.utime(f, (1e9, 1e9))
    again = publish(root)
    assert (root / "_build" / "publish" / "SHA256SUMS").read_text() == sums and again["n_tables"] == 1


def test_publish_never_removes_a_folder_it_did_not_write(tmp_path):
    root = tmp_path / "repo"
    built_site(root)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(LowdataError, match="not empty and holds no manifest of an earlier `lowdata publish`"):
        publish(root, mine)
    assert (mine / "thesis.tex").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(LowdataError, match="is a file"):
        publish(root, tmp_path / "file")
    publish(root, tmp_path / "new")
    publish(root, tmp_path / "new")  # its own earlier output is replaced
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        ".lowdata-publish.json", "SHA256SUMS", "lowdata-book-0.1.0.zip", "lowdata-book-tables-0.1.0.zip", "tables"]


def test_publish_knows_its_earlier_output_by_its_manifest_not_by_names(tmp_path):
    """Issue 29, point 2: files that merely look like an output are a user's; a file a user adds to an output,
    or one changed since, stops the run before anything is removed; a manifest naming files outside is
    not ours."""
    import json

    root = tmp_path / "repo"
    built_site(root)
    looks = tmp_path / "looks"  # the user's own files, with the names publish writes
    (looks / "tables").mkdir(parents=True)
    mine = {"SHA256SUMS": "my sums", "tables/results-2025.csv": "a,b\n1,2\n", "lowdata-book-notes-v0.zip": "zip"}
    for name, text in mine.items():
        (looks / name).write_text(text)
    with pytest.raises(LowdataError, match="holds no manifest .* nothing was removed"):
        publish(root, looks)
    assert {n: (looks / n).read_text() for n in mine} == mine

    out = tmp_path / "out"
    publish(root, out)
    (out / "tables" / "my-notes.csv").write_text("mine")  # added by the user inside an earlier output
    with pytest.raises(LowdataError, match=r"did not write or that changed since \(tables/my-notes.csv\)"):
        publish(root, out)
    assert (out / "tables" / "my-notes.csv").read_text() == "mine" and (out / "SHA256SUMS").is_file()
    (out / "tables" / "my-notes.csv").unlink()
    (out / "tables" / "index.csv").write_text("edited by hand")  # changed since: not removed either
    with pytest.raises(LowdataError, match=r"\(tables/index.csv\)"):
        publish(root, out)
    assert (out / "tables" / "index.csv").read_text() == "edited by hand"
    (out / "tables" / "index.csv").unlink()
    (out / "tables" / "drafts").mkdir()  # an empty folder of the user's is the user's too
    with pytest.raises(LowdataError, match=r"\(tables/drafts\)"):
        publish(root, out)
    (out / "tables" / "drafts").rmdir()
    publish(root, out)  # every remaining file listed and unchanged: replaced
    assert (out / "tables" / "index.csv").read_text().startswith("table,page")

    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "x").write_text("x")
    digest = __import__("hashlib").sha256(b"mine").hexdigest()
    (evil / ".lowdata-publish.json").write_text(json.dumps(
        {"written_by": "lowdata publish", "files": {"../precious.txt": digest, "x": digest}}))
    with pytest.raises(LowdataError, match="holds no manifest"):
        publish(root, evil)
    assert outside.read_text() == "mine" and (evil / "x").read_text() == "x"


def test_publish_refuses_a_site_that_would_not_work_offline_or_shows_this_machine(tmp_path):
    root = tmp_path / "repo"
    html = built_site(root)
    assert check_site(html, [str(root)]) == []
    page = html / "book" / "results" / "sample-size.html"
    page.write_text(page.read_text() + '<script src="https://unpkg.com/thebe@0.8.2/lib/index.js"></script>'
                    + f"<pre>{tmp_path}/mvtec/bottle</pre>")
    problems = check_site(html, [str(tmp_path / "mvtec")])
    assert any("unpkg.com/thebe" in p and "another site" in p for p in problems)
    assert any("shows a folder of this machine" in p for p in problems)
    with pytest.raises(LowdataError, match="cannot publish"):
        publish(root, folders=[str(tmp_path / "mvtec")])
    (html / "_static" / "mathjax" / "tex-chtml.js").unlink()
    assert any("make book-assets" in p for p in check_site(html, []))


def test_publish_before_a_build_says_which_command_builds_the_book(tmp_path, capsys):
    assert main(["publish", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no built book" in err and "make run" in err


def _readme_commands():
    text = (REPO / "README.md").read_text()
    return set(re.findall(r"^(make \w+)", text.split("```bash", 1)[1].split("```", 1)[0], re.M)) | \
        set(re.findall(r"`(make publish)`", text))


def test_the_ci_workflow_runs_the_readme_commands_and_publishes_the_archive():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert "push" in on and set(wf["jobs"]) == {"build", "deploy"}
    steps = wf["jobs"]["build"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == ["make test", "make run", "make publish"] and set(runs) <= _readme_commands()
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert "actions/upload-pages-artifact" in uses and "actions/upload-artifact" in uses
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"].rstrip("/") == "_build/publish"
    assert wf["jobs"]["deploy"]["needs"] == "build" and wf["permissions"]["pages"] == "write"


def test_citation_file_cites_the_package_and_both_papers():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and "lowdata" in cff["title"]
    from lowdata import __version__

    assert cff["version"] == __version__
    titles = [r["title"] for r in cff["references"]]
    assert any("extremely low data regimes" in t for t in titles) and any("Data refinement" in t for t in titles)
    first = next(r for r in cff["references"] if "low data" in r["title"])
    assert [a["family-names"] for a in first["authors"]] == ["Gutierrez", "Cordier", "Caldeira", "Sautory"]
    assert first["year"] == 2021 and "2106.01277" in first["url"]


def test_duplicate_images_are_dropped_in_one_place_and_named(tmp_path):
    """fit and `policy search` both use lowdata.inspection.inputs.distinct_images."""
    import numpy as np
    from PIL import Image

    from lowdata.inspection.inputs import distinct_images

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "c.png").write_bytes((tmp_path / "a.png").read_bytes())
    with pytest.warns(UserWarning, match=r"1 duplicate image\(s\) are used once: c.png \(= a.png\)"):
        paths, hashes, dupes = distinct_images(sorted(tmp_path.glob("*.png")))
    assert [p.name for p in paths] == ["a.png", "b.png"] and len(set(hashes)) == 2 and dupes == ["c.png (= a.png)"]
