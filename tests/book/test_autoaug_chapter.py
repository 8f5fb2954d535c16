import pandas as pd

from lowdata.book.autoaug import fitness_table


def test_the_fitness_table_shows_counts_as_whole_numbers_and_means_as_they_are():
    def rows(category, rep, auroc, chosen):
        return [{"category": category, "method": "maha-lw", "n_train": 10, "replicate": rep, "budget": 4,
                 "fitness_first": f, "auroc": a, "chosen": i == chosen}
                for i, (f, a) in enumerate(zip([0.1, 0.2, 0.3, 0.4], auroc))]

    one = rows("mono", 0, [0.5, 0.6, 0.7, 0.8], 1)  # one replicate: the chosen is 3rd of 4
    two = rows("poly", 0, [0.5, 0.6, 0.7, 0.8], 3) + rows("poly", 1, [0.5, 0.6, 0.7, 0.8], 2)  # 1st and 2nd
    t = fitness_table(pd.DataFrame(one + two))
    assert t.loc[("mono", "Mahalanobis (Ledoit)", 10), "candidates"] == 4
    assert t["candidates"].dtype.kind == "i"  # 4, not 4.0
    assert t["chosen's rank"].dtype.kind == "f"  # poly's mean rank 1.5 stays a mean
    assert t.loc[("poly", "Mahalanobis (Ledoit)", 10), "chosen's rank"] == 1.5
    assert t.loc[("mono", "Mahalanobis (Ledoit)", 10), "chosen's rank"] == 3
