import pytest

from facecluster.pipeline.album_names import MAX_FOLDER_BYTES, folder_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice Smith", "Alice Smith"),
        ("../../etc", "_.._etc"),
        ("/absolute/path", "_absolute_path"),
        ('a\\b:c*d?e"f<g>h|i', "a_b_c_d_e_f_g_h_i"),
        ("tab\tand\nnewline", "tab_and_newline"),
        ("  ..hidden  ", "hidden"),
        ("...", "person_0007"),
        ("CON", "person_0007"),
        ("nul.txt", "person_0007"),
        ("Lpt1", "person_0007"),
        (None, "person_0007"),
        ("Zoë \u202eevil\u202c", "Zoë _evil_"),
    ],
)
def test_folder_names_stay_one_safe_component(name, expected):
    assert folder_name(name, 7, set()) == expected


def test_long_names_are_cut_at_a_character_boundary():
    folder = folder_name("é" * 200, 3, set())
    assert len(folder.encode()) <= MAX_FOLDER_BYTES and set(folder) == {"é"}


def test_clashes_and_reserved_names_get_the_id():
    assert folder_name("Unsorted", 4, {"unsorted"}) == "Unsorted (4)"
    assert folder_name("person_0002", 9, {"person_0002"}) == "person_0002 (9)"
