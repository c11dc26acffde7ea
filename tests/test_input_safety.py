"""Outputs never overwrite an input or a user's files and never leave their folder."""

from __future__ import annotations

from conftest import expect_one_line_error, run_cli, write_small_case


def test_manifest_case_ids_cannot_escape_the_output_folder(tmp_path):
    folder = write_small_case(tmp_path / "data", "C1")
    for bad in ("../../escaped_case", "/tmp/abs_case", "..", "a\\b"):
        manifest = tmp_path / "m.csv"
        names = ["t1", "t1ce", "t2", "flair", "seg"]
        manifest.write_text("case," + ",".join(names) + "\n" + bad + "," + ",".join(
            str(folder / f"C1_{n}.nii.gz") for n in names) + "\n")
        expect_one_line_error(run_cli("prepare", "--brats", manifest, "--out", tmp_path / "out", "--folds", "1", "--quiet"),
                  "m.csv", "cannot be a file name")
        assert not (tmp_path / "out").exists() and not (tmp_path / "escaped_case").exists()


def test_manifest_saved_by_a_spreadsheet_is_read(tmp_path):
    folder = write_small_case(tmp_path / "data", "C1")
    names = ["t1", "t1ce", "t2", "flair", "seg"]
    manifest = tmp_path / "m.csv"
    text = "case," + ",".join(names) + "\r\nC1," + ",".join(str(folder / f"C1_{n}.nii.gz") for n in names) + "\r\n"
    manifest.write_bytes(b"\xef\xbb\xbf" + text.encode())  # UTF-8 BOM and CRLF, as Excel saves
    result = run_cli("prepare", "--brats", manifest, "--out", tmp_path / "out", "--folds", "1", "--quiet")
    assert result.returncode == 0, result.stderr


def test_demo_fresh_deletes_only_a_folder_it_made(tmp_path):
    mine = tmp_path / "my_results"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    # a bad argument is refused before anything is touched
    expect_one_line_error(run_cli("demo", "--fresh", "--cases", "2", "--out", mine), "--cases")
    # valid arguments, but the folder is not the demo's
    expect_one_line_error(run_cli("demo", "--fresh", "--out", mine), "made by the demo", "my_results")
    assert (mine / "thesis.txt").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    expect_one_line_error(run_cli("demo", "--out", a_file), "not a folder")
    assert a_file.read_text() == "mine"
