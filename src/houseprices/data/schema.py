"""Column names of the competition files: the target, the Id, numeric and categorical features."""

from __future__ import annotations

ID = "Id"

TARGET = "SalePrice"

# The 36 features that data_description.txt defines as numbers (MSSubClass is a
# numeric code; the features config can still treat it as a category).
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    """
    MSSubClass LotFrontage LotArea OverallQual OverallCond YearBuilt YearRemodAdd
    MasVnrArea BsmtFinSF1 BsmtFinSF2 BsmtUnfSF TotalBsmtSF 1stFlrSF 2ndFlrSF
    LowQualFinSF GrLivArea BsmtFullBath BsmtHalfBath FullBath HalfBath BedroomAbvGr
    KitchenAbvGr TotRmsAbvGrd Fireplaces GarageYrBlt GarageCars GarageArea WoodDeckSF
    OpenPorchSF EnclosedPorch 3SsnPorch ScreenPorch PoolArea MiscVal MoSold YrSold
""".split()
)

CATEGORICAL_FEATURES: tuple[str, ...] = tuple(
    """
    MSZoning Street Alley LotShape LandContour Utilities LotConfig LandSlope
    Neighborhood Condition1 Condition2 BldgType HouseStyle RoofStyle RoofMatl
    Exterior1st Exterior2nd MasVnrType ExterQual ExterCond Foundation BsmtQual BsmtCond
    BsmtExposure BsmtFinType1 BsmtFinType2 Heating HeatingQC CentralAir Electrical
    KitchenQual Functional FireplaceQu GarageType GarageFinish GarageQual GarageCond
    PavedDrive PoolQC Fence MiscFeature SaleType SaleCondition
""".split()
)

FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# Numbers that name a class (data_description.txt): new values in test are new categories.
CODE_FEATURES: tuple[str, ...] = ("MSSubClass",)


# data_description.txt: for these, NA means the house has no such thing.
NA_MEANS_NONE_CATEGORICAL = (
    "Alley",
    "BsmtQual",
    "BsmtCond",
    "BsmtExposure",
    "BsmtFinType1",
    "BsmtFinType2",
    "FireplaceQu",
    "GarageType",
    "GarageFinish",
    "GarageQual",
    "GarageCond",
    "PoolQC",
    "Fence",
    "MiscFeature",
    "MasVnrType",
)

NA_MEANS_ZERO_NUMERIC = (
    "MasVnrArea",
    "BsmtFinSF1",
    "BsmtFinSF2",
    "BsmtUnfSF",
    "TotalBsmtSF",
    "BsmtFullBath",
    "BsmtHalfBath",
    "GarageCars",
    "GarageArea",
)

_QUALITY = ["None", "Po", "Fa", "TA", "Gd", "Ex"]

# Worst to best, so a larger code is a better house.
ORDINAL_SCALES: dict[str, list[str]] = {
    **{
        c: _QUALITY
        for c in (
            "ExterQual",
            "ExterCond",
            "BsmtQual",
            "BsmtCond",
            "HeatingQC",
            "KitchenQual",
            "FireplaceQu",
            "GarageQual",
            "GarageCond",
            "PoolQC",
        )
    },
    "BsmtExposure": ["None", "No", "Mn", "Av", "Gd"],
    "BsmtFinType1": ["None", "Unf", "LwQ", "Rec", "BLQ", "ALQ", "GLQ"],
    "BsmtFinType2": ["None", "Unf", "LwQ", "Rec", "BLQ", "ALQ", "GLQ"],
    "Functional": ["Sal", "Sev", "Maj2", "Maj1", "Mod", "Min2", "Min1", "Typ"],
    "GarageFinish": ["None", "Unf", "RFn", "Fin"],
}
