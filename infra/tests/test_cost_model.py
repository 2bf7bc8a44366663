"""The README's cost section is what scripts/cost-model computes, and the model adds up."""

import importlib.machinery
import importlib.util
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cost_model():
    path = str(ROOT / "scripts" / "cost-model")
    loader = importlib.machinery.SourceFileLoader("cost_model", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("cost_model", loader))
    loader.exec_module(module)
    return module


class CostModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cm = cost_model()
        cls.prices, cls.workload = cls.cm.load("prices.json"), cls.cm.load("workload.json")
        cls.model = cls.cm.Model(cls.prices, cls.workload, cls.cm.templates())

    def test_the_readme_shows_what_the_script_prints(self):
        self.assertEqual(self.cm.main(["cost-model", "--check", "README.md"]), 0)

    def test_every_price_names_its_page_and_every_count_how_it_was_had(self):
        for name, price in self.prices["prices"].items():
            self.assertTrue(price["source"].startswith("https://aws.amazon.com/"), name)
        for name, count in self.workload["measured"].items():
            self.assertTrue(count["how"], name)

    def test_memory_comes_from_the_template(self):
        self.assertEqual(self.model.mem["ChatTurnFunction"], 0.5)
        self.assertEqual(self.model.mem["MessagesSendFunction"], 0.25)

    def test_one_message_per_token_costs_tokens_over_frames_times_more_websocket(self):
        coalesced = self.model.per_turn()["API Gateway WebSocket"]
        per_token = self.model.per_turn(per_token=True)["API Gateway WebSocket"]
        m = self.model.m
        self.assertAlmostEqual(per_token / coalesced, m["answer_tokens"] / m["frames_per_answer"])

    def test_a_month_is_the_floor_plus_each_users_share(self):
        floor = sum(self.model.fixed_per_month().values())
        one = self.model.per_user_month()
        self.assertAlmostEqual(self.model.month(1_000), floor + 1_000 * one)
        # Past Cognito's free users each one adds its monthly active user price.
        over = self.model.month(20_000) - (floor + 20_000 * one)
        self.assertAlmostEqual(over, 10_000 * self.prices["prices"]["cognito_mau"]["usd"])

    def test_the_proxy_bills_aurora_capacity_only_past_its_floor(self):
        self.assertEqual(self.model.proxy_above_floor(1_000), 0)
        # Enough turns to keep Aurora at 10 ACU on average: 2 ACU past the 8-ACU floor.
        a = self.model.a
        users = (10 - a["aurora_min_acu"]) * 730 * 3600 / a["aurora_acu_s_per_turn"] / a["turns_per_user_month"]
        price = self.prices["prices"]["rds_proxy_acu_hour"]["usd"]
        self.assertAlmostEqual(self.model.proxy_above_floor(users), 2 * 730 * price)


if __name__ == "__main__":
    unittest.main()
