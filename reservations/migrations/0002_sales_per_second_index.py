# The sales API's cancellations per second (GET /api/v1/tickets/{id}/sales/). Built CONCURRENTLY,
# so that deploying it during a sale does not block bookings while the index is built.

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('reservations', '0001_initial'),
        ('tickets', '0002_waiting_room'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='reservation',
            index=models.Index(condition=models.Q(('cancelled_at__isnull', False)), fields=['ticket', 'cancelled_at'], name='reservations_ticket_cancel_idx'),
        ),
    ]
