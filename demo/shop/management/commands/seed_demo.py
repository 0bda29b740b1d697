from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shop.seed import create_admin, seed


class Command(BaseCommand):
    help = "Fill an empty database with the demo pizzeria and an admin/admin superuser."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=30, help="Number of orders to create (default 30).")

    def handle(self, *args: Any, orders: int, **options: Any) -> None:
        if seed(orders=orders):
            self.stdout.write(self.style.SUCCESS(f"Seeded the demo pizzeria with {orders} orders."))
        else:
            self.stdout.write("Demo data already present; nothing to do.")
        if create_admin():
            self.stdout.write(self.style.SUCCESS("Created superuser admin / admin."))
