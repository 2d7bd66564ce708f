from recourse_bench.seeding import derive_seed


def test_derive_seed_is_deterministic_and_in_range():
    seeds = {derive_seed(0, "german", "logreg", i) for i in range(200)}
    assert len(seeds) == 200
    assert all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(0, "german", "logreg", 3) == derive_seed(0, "german", "logreg", 3)


def test_derive_seed_depends_on_base_names_and_order():
    assert derive_seed(0, "a", "b") != derive_seed(1, "a", "b")
    assert derive_seed(0, "a", "b") != derive_seed(0, "b", "a")
    assert derive_seed(0, "ab") != derive_seed(0, "a", "b")
