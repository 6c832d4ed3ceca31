"""Users: created by administrators, with an optional native password stored as an Argon2 hash."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import Role, User
from server.services.errors import EntityNotFoundError, UserInputError
from server.services.passwords import hash_password

MAX_IDENTIFIER_LENGTH = 255
MIN_PASSWORD_LENGTH = 1
MAX_PASSWORD_LENGTH = 1024


class UserService:
    async def find_one(self, user_id: int) -> User | None:
        return await User.filter(id=user_id).prefetch_related("roles__channels").first()

    async def create(
        self, identifier: str, password: str | None, verified: bool = True, role_ids: Sequence[int] = ()
    ) -> User:
        identifier = identifier.strip()
        if not 0 < len(identifier) <= MAX_IDENTIFIER_LENGTH:
            raise UserInputError(f"identifier must be 1 to {MAX_IDENTIFIER_LENGTH} characters")
        if password is not None and not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise UserInputError(f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
        wanted = set(role_ids)
        roles = await Role.filter(id__in=wanted) if wanted else []
        missing = wanted - {role.id for role in roles}
        if missing:
            raise EntityNotFoundError("Role", min(missing))
        if await User.filter(identifier=identifier).exists():
            raise UserInputError(f"a user with the identifier '{identifier}' already exists")
        password_hash = await hash_password(password) if password is not None else None
        try:
            async with in_transaction() as connection:
                user = await User.create(
                    identifier=identifier, password_hash=password_hash, verified=verified, using_db=connection
                )
                if roles:
                    await user.roles.add(*roles, using_db=connection)
        except IntegrityError:
            raise UserInputError(f"a user with the identifier '{identifier}' already exists") from None
        created = await self.find_one(user.id)
        assert created is not None
        return created
