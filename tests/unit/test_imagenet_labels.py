from modstream.core.settings import PROJECT_ROOT
from modstream.models.candidate import LABEL, read_label_file
from modstream.models.weights.efficientnet import imagenet_labels, label_name

LABELS_FILE = PROJECT_ROOT / "model_repository" / "efficientnet_lite0" / "labels.txt"


def test_the_committed_labels_file_is_what_imagenet_labels_gives() -> None:
    # Regenerate with: Path(LABELS_FILE).write_text("".join(f"{n}\n" for n in imagenet_labels()))
    assert LABELS_FILE.read_text() == "".join(f"{name}\n" for name in imagenet_labels())


def test_there_are_1000_unique_valid_names_that_the_candidate_check_accepts() -> None:
    labels = imagenet_labels()
    assert len(labels) == 1000 and len(set(labels)) == 1000
    assert all(LABEL.match(label) for label in labels)
    assert read_label_file(LABELS_FILE) == labels


def test_names_keep_imagenet_order_and_only_colliding_names_take_their_index() -> None:
    labels = imagenet_labels()
    assert labels[0] == "tench" and labels[999] == "toilet_tissue"
    assert labels[281:286] == ["tabby", "tiger_cat", "persian_cat", "siamese_cat", "egyptian_cat"]
    # "Cardigan" (the corgi) and "cardigan" (the sweater) meet once lowercased.
    assert (labels[264], labels[474]) == ("cardigan_264", "cardigan_474")
    assert (labels[134], labels[517], labels[638], labels[639]) == (
        "crane_bird",
        "crane",
        "maillot",
        "maillot_tank_suit",
    )


def test_punctuation_and_spaces_become_single_underscores() -> None:
    assert label_name("jack-o'-lantern") == "jack_o_lantern"
    assert label_name("German short-haired pointer") == "german_short_haired_pointer"
    assert label_name("yellow lady's slipper") == "yellow_lady_s_slipper"
