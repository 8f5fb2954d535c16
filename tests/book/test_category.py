"""A category's page: its sizes fit its training set, and what is left out is said."""
from lowdata.book.category import category_params, study_configs
from lowdata.experiments.design import sizes_within


def test_a_small_category_runs_the_sizes_it_can_and_says_which_it_cannot(tmp_path):
    assert sizes_within("5,10,20,30,50,100,max", 20, "bottle_loco") == (
        [5, 10, 20], "N = 30, 50, 100 left out: bottle_loco has 20 training images")
    assert sizes_within("5,10,max", 441, "mono") == ([5, 10, 441], "")
    assert sizes_within("auto", 12, "x") == ([5, 10, 12], "")  # the paper's grid, up to the category's size
    assert sizes_within("1,2,4,8,16", 10, "x") == ([1, 2, 4, 8], "N = 16 left out: x has 10 training images")
    assert sizes_within("50", 6, "x") == ([6], "N = 50 left out: x has 6 training images")  # at least the full set
    p = category_params(data_root=None, category="mono", backbone="efficientnet-lite0", input_size=None,
                        methods="knn,padim", sizes="5,10,20,30,50,100,max", reps=2, aug="0", sweep="1",
                        augment_only="", out_dir=str(tmp_path), cache_dir=None, seed=0)
    configs = study_configs(p, 20)  # the default preset's grid on a category of 20 images: no error
    assert [c.sizes for c in configs] == [[5, 10, 20], [5, 10, 20]]
