"""The README's cost section is what scripts/cost-model computes, and the model adds up."""

import pathlib
import unittest

import scripts

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cost_model():
    return scripts.load("cost-model")


class CostModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cm = cost_model()
        cls.prices, cls.workload = cls.cm.load("prices.json"), cls.cm.load("workload.json")
        cls.models = cls.cm.models(cls.prices, cls.workload)
        cls.model, cls.prod = cls.models["default"], cls.models["prod"]

    def test_the_readme_shows_what_the_script_prints(self):
        self.assertEqual(self.cm.main(["cost-model", "--check", "README.md"]), 0)

    def test_every_price_names_its_page_and_every_count_how_it_was_had(self):
        for name, price in self.prices["prices"].items():
            self.assertTrue(price["source"].startswith("https://aws.amazon.com/"), name)
        for name, count in self.workload["measured"].items():
            self.assertTrue(count["how"], name)

    def test_every_assumption_is_used(self):
        source = (ROOT / "scripts" / "cost-model").read_text()
        for name in list(self.workload["assumed"]) + list(self.prices["prices"]):
            self.assertTrue(f'"{name}"' in source or f"'{name}'" in source, name)

    def test_memory_comes_from_the_template(self):
        self.assertEqual(self.model.mem["ChatTurnFunction"], 0.5)
        self.assertEqual(self.model.mem["MessagesSendFunction"], 0.25)

    def test_each_environment_is_priced_with_its_own_settings(self):
        self.assertEqual(set(self.models), {"default", "staging", "prod"})
        nat = "NAT gateways and their IPv4"
        self.assertAlmostEqual(self.prod.fixed_per_month()[nat], 2 * self.model.fixed_per_month()[nat])
        self.assertEqual((self.model.aurora_instances, self.prod.aurora_instances), (1, 2))
        # Interface endpoints cost only where an environment turns them on.
        self.assertNotIn("Interface endpoints", " ".join(self.prod.fixed_per_month()))
        on = self.cm.Model(self.prices, self.workload, self.cm.templates(), {**self.prod.params, "InterfaceEndpoints": "true"})
        self.assertAlmostEqual(on.fixed_per_month()["Interface endpoints (2 x 2 zones)"], 4 * 730 * 0.01)
        self.assertIn("Interface endpoints", on.per_turn())

    def test_one_message_per_token_costs_tokens_over_frames_times_more_websocket(self):
        coalesced = self.model.per_turn()["API Gateway WebSocket"]
        per_token = self.model.per_turn(per_token=True)["API Gateway WebSocket"]
        m = self.model.m
        self.assertAlmostEqual(per_token / coalesced, m["answer_tokens"] / m["frames_per_answer"])

    def test_a_month_is_the_floor_plus_each_users_share(self):
        # Few users: prod's Aurora stays at its minimum, X-Ray's reservoir records every request.
        floor = sum(self.prod.fixed_per_month().values())
        one = self.prod.per_user_month(capacity=False)
        self.assertEqual(self.prod.aurora_capacity_month(100), 0)
        self.assertAlmostEqual(self.prod.month(100), floor + 100 * one + self.prod.xray_month(100))
        # Past Cognito's free users each one adds its monthly active user price.
        m = self.prod
        over = m.month(20_000) - (
            sum(m.fixed_per_month().values()) + 20_000 * m.per_user_month(capacity=False)
            + m.aurora_capacity_month(20_000) * self.prices["prices"]["aurora_acu_hour"]["usd"]
            + m.proxy_above_floor(20_000) + m.xray_month(20_000)
        )
        self.assertAlmostEqual(over, 10_000 * self.prices["prices"]["cognito_mau"]["usd"])

    def test_aurora_scales_with_the_busy_hours_and_stays_within_its_range(self):
        busy, quiet = self.prod.aurora_acu(10_000)
        self.assertGreaterEqual(busy, quiet)
        self.assertGreater(busy, float(self.prod.params["DatabaseMinAcu"]))
        self.assertEqual(self.prod.aurora_acu(10_000_000)[0], float(self.prod.params["DatabaseMaxAcu"]))

    def test_xray_records_the_reservoir_then_its_rate(self):
        a = self.model.a
        reservoir = a["xray_reservoir_per_s"] * 730 * 3600
        per_user = a["turns_per_user_month"] * self.model.invocations_per_turn() + self.model.pings_per_user_month()
        users = 10 * reservoir / per_user
        traced = reservoir + a["xray_fixed_rate"] * 9 * reservoir
        price = self.prices["prices"]
        self.assertAlmostEqual(
            self.model.xray_month(users),
            (traced - price["xray_free_traces"]["usd"]) * price["xray_trace_recorded"]["usd"],
        )

    def test_the_proxy_bills_aurora_capacity_only_past_its_floor(self):
        self.assertEqual(self.model.proxy_above_floor(1_000), 0)
        # Aurora held at 10 ACU: 2 ACU past the 8-ACU floor.
        ten = self.cm.Model(self.prices, self.workload, self.cm.templates(), {**self.model.params, "DatabaseMinAcu": "10", "DatabaseMaxAcu": "16"})
        price = self.prices["prices"]["rds_proxy_acu_hour"]["usd"]
        self.assertAlmostEqual(ten.proxy_above_floor(0), 2 * 730 * price)

    def test_each_environments_budget_is_above_what_it_costs_with_no_user(self):
        # A budget under the fixed cost alarms every month and is soon ignored.
        for env, model in self.models.items():
            fixed = sum(model.fixed_per_month().values())
            self.assertGreater(float(model.params["MonthlyBudgetUsd"]), 1.25 * fixed, env)

    def test_the_proxy_has_a_connection_for_every_pinned_client_at_the_peak(self):
        # RDS Proxy may pin a session that uses named prepared statements: each environment
        # is sized so that even then the busy hour's connections fit.
        self.assertEqual(self.cm.aurora_max_connections(4), 811)
        self.assertEqual(self.cm.aurora_max_connections(256), 5000)
        for env, users in (("default", 10_000), ("staging", 10_000), ("prod", 100_000)):
            model = self.models[env]
            self.assertLessEqual(model.peak_connections(users), model.proxy_connections(), env)


if __name__ == "__main__":
    unittest.main()
